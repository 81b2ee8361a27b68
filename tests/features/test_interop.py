"""The cache opens with plain zarr-python, in a process that never imports fpload, and reads the same."""

import json
import subprocess
import sys
import textwrap

import numpy as np

from fpload.features import open_features

READER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import zarr

    group = zarr.open_group(sys.argv[1], mode="r")
    out = {}
    for name in sorted(group.array_keys()):
        arr = group[name]
        data = arr[...]
        out[name] = {"attrs": dict(arr.attrs), "dtype": str(arr.dtype), "shape": list(arr.shape),
                     "values": data.tolist() if data.dtype.kind != "f" else data.astype(float).tolist()}
    out["_group"] = dict(group.attrs)
    # the join key: uint8 [N, 16], each row the 128 bits of a hex sample_id
    out["sample_id_hex"] = {"values": [bytes(row).hex() for row in group["sample_id"][...]]}
    assert not any(m == "fpload" or m.startswith("fpload.") for m in sys.modules), "fpload was imported"
    np.savez(sys.argv[2], **{k: np.asarray(v["values"]) for k, v in out.items() if k != "_group"})
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "values"} if k != "_group" else v
                      for k, v in out.items()}))
""")


def test_plain_zarr_reads_the_same(same_size, tmp_path):
    cache = open_features(same_size.path)
    npz = tmp_path / "read.npz"
    proc = subprocess.run([sys.executable, "-c", READER, str(cache.path), str(npz)], capture_output=True,
                          text=True, cwd=tmp_path, check=True)
    meta = json.loads(proc.stdout)
    assert meta["_group"]["fpload_features"]["schema_version"] == 2
    assert meta["sample_id"]["dtype"] == "uint8" and meta["sample_id"]["shape"] == [24, 16]
    got = np.load(npz)
    for name in cache.names:
        assert meta[name]["attrs"]["extractor"] == cache.spec(name).extractor
        assert meta[name]["attrs"]["version"] == cache.spec(name).version
        assert meta[name]["shape"] == list(cache.spec(name).shape)
        want = cache.load(name)
        np.testing.assert_array_equal(got[name].astype(want.dtype), want, err_msg=name)
    assert got["sample_id_hex"].tolist() == cache.sample_ids.tolist()
    assert cache.sample_ids.tolist() == cache.version.samples.column("sample_id").to_pylist()
