"""Write the golden dataset version of format schema 1 into tests/golden/version-v1.

Run by hand only, when a new schema version is released (never to make a failing test pass):
    python tests/golden/make_golden.py
"""

import shutil
import sys
import tempfile
from pathlib import Path

from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.pack import pack_version
from fpload.testing import make_captures

if __name__ == "__main__":
    dest = Path(__file__).parent / "version-v1"
    if dest.exists():
        sys.exit(f"{dest} exists: golden files are never regenerated in place")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        cat = open_catalog(d / "cat.duckdb")
        cat.ingest(make_captures(d / "c", subjects=3, fingers=1, impressions=2, size=[(12, 10), (9, 11)]))
        res = pack_version(cat, out=d / "v", name="golden", where="consent",
                           config=PackConfig(encoding="raw", shard_max_samples=2,
                                             splits={"train": 0.5, "val": 0.5}))
        shutil.copytree(res.path, dest)
    print(dest)
