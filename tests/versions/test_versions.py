import shutil

import pytest

from fpload.errors import IntegrityError, ShardNotFoundError, VersionError, VersionNotFoundError
from fpload.pack import pack_version
from fpload.versions import describe, list_versions, open_version, verify_version


@pytest.fixture()
def version(tmp_path, catalog):
    return pack_version(catalog, out=tmp_path / "versions", name="v", where="consent").path


def test_open_by_path_prefix_and_name(version):
    v = open_version(version)
    assert open_version(version.parent / v.id[:5]).id == v.id
    assert open_version(version.parent).id == v.id  # ROOT/NAME: the latest
    assert [x.id for x in list_versions(version.parent.parent)] == [v.id]
    d = describe(v)
    assert d["samples"] == 40 and d["catalog"]["revision"] == 1
    with pytest.raises(VersionNotFoundError):
        open_version(version.parent / "nope")


def test_verify_intact(version):
    assert verify_version(version) == []


def test_verify_names_altered_and_missing_shards(version):
    shards = sorted((version / "shards").glob("*.tar"))
    data = bytearray(shards[0].read_bytes())
    data[700] ^= 0xFF  # same size, other bytes
    shards[0].write_bytes(bytes(data))
    shards[1].unlink()
    with open(shards[2], "ab") as fh:
        fh.write(b"extra")
    problems = verify_version(version)
    assert any(shards[0].name in p and "sha256" in p for p in problems)
    assert any(shards[1].name in p and "missing" in p for p in problems)
    assert any(shards[2].name in p and "altered" in p for p in problems)
    v = open_version(version)
    with pytest.raises(ShardNotFoundError, match=shards[1].name):
        v.require_intact("size")
    shutil.copy(shards[0], shards[1])  # now present but wrong size
    with pytest.raises(IntegrityError, match=shards[2].name):
        v.require_intact("size")


def test_unknown_schema_version_is_refused(version):
    import json

    m = json.loads((version / "manifest.json").read_text())
    m["schema_version"] = 99
    (version / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(VersionError, match="schema_version 99"):
        open_version(version)


def test_verify_covers_the_feature_cache(version):
    chunk = next(p for p in sorted((version / "features.zarr" / "quality").rglob("*")) if p.is_file()
                 and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    problems = verify_version(version)
    assert problems and all("features.zarr" in p for p in problems)
