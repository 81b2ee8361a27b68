"""The demo runs end to end (tiny size) and reports real figures."""

import pytest
from rich.console import Console

from fpload.demo import run_demo

pytestmark = pytest.mark.usefixtures("plugin")


def test_demo_runs_and_is_rerunnable(tmp_path):
    console = Console(file=open(tmp_path / "log.txt", "w"), width=120)
    first = run_demo(tmp_path / "demo", subjects=4, steps=3, device="cpu", console=console)
    assert first["loader_samples_per_s"] > 0 and first["train_samples_per_s"] > 0
    assert first["device"] == "cpu"
    again = run_demo(tmp_path / "demo", subjects=4, steps=3, device="cpu", console=console)
    assert again["version_id"] == first["version_id"]
    console.file.close()
    log = (tmp_path / "log.txt").read_text()
    assert "already published" in log and "samples/s" in log
