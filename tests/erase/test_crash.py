"""Erasure under kill -9: at injected points (FPLOAD_ERASE_CRASH_AT), the process dies with
SIGKILL; the same command run again completes, verify passes, and the other subjects' ids, bytes
and features in the successors equal the old versions'."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fpload.erase import verify_receipt

from .conftest import make_world, subject_samples, version_content

#: each point and how many times one run passes it (two versions hold S001, each with several files)
POINTS = {"planned": 1, "successor-shard": 3, "successor": 2, "catalog-deleted": 1, "catalog": 1,
          "tombstone-written": 2, "destroying": 20, "tombstone": 2, "receipt": 1, "audit": 1}


def _erase(world: dict, crash: str | None, receipt: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("FPLOAD_ERASE_CRASH_AT", None)
    if crash:
        env["FPLOAD_ERASE_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "fpload.cli", "erase", "--subject", "S001", "--reason",
                           "consent withdrawn", "--catalog", str(world["catalog"]), "--root", str(world["root"]),
                           "--receipt", str(receipt)], env=env, capture_output=True, text=True, timeout=300)


# a seeded draw of which occurrence of each point to die at (deterministic, varies per point)
_RNG = random.Random(12)


@pytest.mark.parametrize("point", [f"{p}:{_RNG.randint(1, n)}" for p, n in POINTS.items()])
def test_kill_at_point_then_rerun_completes(tmp_path, point):
    world = make_world(tmp_path)
    before = {n: version_content(v) for n, v in world["versions"].items()}
    receipt = tmp_path / "receipt.json"
    first = _erase(world, point, receipt)
    assert first.returncode == -9, first.stderr
    second = _erase(world, None, receipt)
    assert second.returncode == 0, second.stderr
    assert verify_receipt(receipt) == []
    import json

    r = json.loads(receipt.read_text())
    for name, old in world["versions"].items():
        v = next(x for x in r["versions"] if x["version_id"] == old.name)
        after = version_content(Path(v["successor_path"]))
        want = {s: d for s, d in before[name].items() if s not in subject_samples(before[name], "S001")}
        assert set(after) == set(want)
        for sid, d in after.items():
            assert (d["members"], d["row"], d.get("features")) == \
                (want[sid]["members"], want[sid]["row"], want[sid].get("features"))
