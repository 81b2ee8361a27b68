"""Features any checked version under the same root holds are copied, whatever query made it."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpload.features as features_pkg
from fpload.catalog import open_catalog
from fpload.features import FeaturesConfig, open_features
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures

CFG = PackConfig(encoding="raw", shard_max_samples=5)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """24 captures of two sizes (fingers 1 and 2)."""
    root = tmp_path_factory.mktemp("rootreuse")
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(make_captures(root / "a", subjects=6, fingers=2, impressions=2, size=[(40, 33), (30, 41)], seed=21))
    yield cat
    cat.close()


def _count_runs(monkeypatch) -> list[tuple[str, frozenset]]:
    """Every extractor run of a pack at workers=1 (it runs in this process): (sample_id, extractors)."""
    calls: list[tuple[str, frozenset]] = []
    real = features_pkg.run_extractors

    def counting(image, job, only=None, sample_id="?"):
        calls.append((sample_id, frozenset(only) if only is not None else frozenset(e.name for e in job.extractors)))
        return real(image, job, only, sample_id)

    monkeypatch.setattr(features_pkg, "run_extractors", counting)
    return calls


def _same_as_fresh(res, cat, tmp_path: Path, where: str, config: PackConfig) -> None:
    fresh = pack_version(cat, out=tmp_path / "fresh", name=res.name, where=where, config=config, reuse=False)
    assert fresh.version_id == res.version_id  # same files, same id: reuse is invisible in the version
    a, b = open_features(res.path, verify=True), open_features(fresh.path)
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)


def test_other_query_same_root_reuses_without_running_extractors(tmp_path, catalog, monkeypatch):
    first = pack_version(catalog, out=tmp_path / "v", name="index", where="consent AND finger = 2", config=CFG)
    assert first.features_computed == 12
    calls = _count_runs(monkeypatch)
    second = pack_version(catalog, out=tmp_path / "v", name="all", where="consent", config=CFG)
    held = set(first.manifest and open_features(first.path).sample_ids.tolist())
    ran = {sid for sid, _ in calls}
    assert len(calls) == 12 and not (ran & held)  # only the 12 samples `first` lacks were computed
    assert (second.features_computed, second.features_found, second.features_reused) == (12, 12, 0)
    m = second.manifest["features"]  # the manifest counts against the parent (none) alone
    assert (m["computed"], m["reused"]) == (24, 0) and second.manifest["parent"] is None
    _same_as_fresh(second, catalog, tmp_path, "consent", CFG)
    # reuse off: everything is computed again
    calls.clear()
    third = pack_version(catalog, out=tmp_path / "v", name="all2", where="consent", config=CFG, reuse=False)
    assert len(calls) == 24 and third.features_found == 0


def test_changed_params_miss_only_that_extractor(tmp_path, catalog, monkeypatch):
    pack_version(catalog, out=tmp_path / "v", name="a", where="consent", config=CFG)
    changed = PackConfig(encoding="raw", shard_max_samples=5, features=FeaturesConfig(extractors=[
        "orientation", {"name": "quality", "params": {"min_area": 0.2}}, "thumbnail"]))
    calls = _count_runs(monkeypatch)
    res = pack_version(catalog, out=tmp_path / "v", name="b", where="consent", config=changed)
    assert len(calls) == 24 and {only for _, only in calls} == {frozenset({"quality"})}
    assert res.features_computed == 24 and res.features_found == 0
    _same_as_fresh(res, catalog, tmp_path, "consent", changed)
    # another block size: the built-ins' outputs are computed on other blocks, nothing is taken
    calls.clear()
    block8 = PackConfig(encoding="raw", shard_max_samples=5, features=FeaturesConfig(block=8))
    res8 = pack_version(catalog, out=tmp_path / "v", name="c", where="consent", config=block8)
    assert len(calls) == 24 and all(len(only) == 5 for _, only in calls) and res8.features_found == 0


def _tamper_chunk(version_path: Path) -> None:
    chunk = next(p for p in sorted((version_path / "features.zarr" / "orientation").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))


def test_tampered_or_broken_versions_are_never_copied(tmp_path, catalog, monkeypatch):
    first = pack_version(catalog, out=tmp_path / "v", name="a", where="consent", config=CFG)
    _tamper_chunk(Path(first.path))
    broken = tmp_path / "v" / "junk" / "0123456789abcdef"  # a manifest that is not JSON
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json")
    calls = _count_runs(monkeypatch)
    res = pack_version(catalog, out=tmp_path / "v", name="b", where="consent", config=CFG)
    assert len(calls) == 24 and res.features_found == 0
    _same_as_fresh(res, catalog, tmp_path, "consent", CFG)
    # an intact version packed later is used, the tampered one still not
    calls.clear()
    again = pack_version(catalog, out=tmp_path / "v", name="c", where="consent AND finger = 1", config=CFG)
    assert calls == [] and again.features_found == 12


def test_a_changed_manifest_is_not_trusted(tmp_path, catalog, monkeypatch):
    first = pack_version(catalog, out=tmp_path / "v", name="a", where="consent", config=CFG)
    man = Path(first.path) / "manifest.json"
    man.write_text(man.read_text().replace('"writer"', '"writer_"'))  # no longer hashes to its id
    calls = _count_runs(monkeypatch)
    res = pack_version(catalog, out=tmp_path / "v", name="b", where="consent", config=CFG)
    assert len(calls) == 24 and res.features_found == 0


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fingers_first=st.sampled_from(["1", "2", "1, 2"]), impressions_second=st.sampled_from(["0", "1", "0, 1"]))
def test_property_only_samples_no_version_holds_are_computed(tmp_path_factory, catalog, monkeypatch,
                                                              fingers_first, impressions_second):
    tmp = tmp_path_factory.mktemp("prop")
    first = pack_version(catalog, out=tmp / "v", name="a", where=f"consent AND finger IN ({fingers_first})", config=CFG)
    held = set(open_features(first.path).sample_ids.tolist())
    calls = _count_runs(monkeypatch)
    where = f"consent AND impression IN ({impressions_second})"
    res = pack_version(catalog, out=tmp / "v", name="b", where=where, config=CFG)
    monkeypatch.undo()
    wanted = set(open_features(res.path).sample_ids.tolist())
    assert {sid for sid, _ in calls} == wanted - held and len(calls) == len(wanted - held)
    assert res.features_found == len(wanted & held)
    _same_as_fresh(res, catalog, tmp, where, CFG)


def test_cli_reuse_and_no_reuse(tmp_path, catalog, capsys):
    import json

    from fpload.cli import main

    pack_version(catalog, out=tmp_path / "v", name="a", where="consent AND finger = 1", config=CFG)
    catalog.release()
    base = ["pack", "--where", "consent", "--catalog", str(catalog.path), "--out", str(tmp_path / "v"), "--json",
            "--workers", "1"]
    assert main([*base, "--name", "b"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["features_computed"], found["features_found"]) == (12, 12)
    assert main([*base, "--name", "c", "--no-reuse"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert (off["features_computed"], off["features_found"]) == (24, 0)


def test_custom_extractor_outputs_are_found_too(tmp_path, catalog, monkeypatch):
    import sys
    import textwrap

    mod = tmp_path / "root_feats.py"
    mod.write_text(textwrap.dedent("""
        import numpy as np

        CALLS = []

        def stats(image, bins=4):
            CALLS.append(1)
            return {"mean": np.float32(image.mean()),
                    "hist": np.bincount(image.ravel().astype(np.int64) * bins // 256, minlength=bins).astype(np.int32)}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import root_feats

    cfg = PackConfig(encoding="raw", shard_max_samples=5, features=FeaturesConfig(extractors=[
        "quality", {"name": "stats", "function": "root_feats:stats", "version": 2, "params": {"bins": 8}}]))
    pack_version(catalog, out=tmp_path / "v", name="a", where="consent AND finger = 1", config=cfg)
    assert len(root_feats.CALLS) == 12
    res = pack_version(catalog, out=tmp_path / "v", name="b", where="consent", config=cfg)
    assert len(root_feats.CALLS) == 24 and res.features_found == 12
    _same_as_fresh(res, catalog, tmp_path, "consent", cfg)
    # another version of the function is another identity: nothing is taken
    v3 = PackConfig(encoding="raw", shard_max_samples=5, features=FeaturesConfig(extractors=[
        {"name": "stats", "function": "root_feats:stats", "version": 3, "params": {"bins": 8}}]))
    pack_version(catalog, out=tmp_path / "v", name="c", where="consent", config=v3)
    assert len(root_feats.CALLS) == 24 + 24 + 24  # the fresh pack above ran 24, this one 24
    sys.modules.pop("root_feats", None)
