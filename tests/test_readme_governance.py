"""The README's Governance walkthrough runs as written, and does what it says."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _walkthrough() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Governance"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_governance_walkthrough_runs(tmp_path):
    bindir = Path(sys.executable).parent
    env_path = f"{bindir}:{Path('/usr/bin')}:{Path('/bin')}"
    outputs = []
    for line in _walkthrough():
        cmd = line.split("#")[0].strip() if not line.startswith("python -c") else line
        proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": env_path, "HOME": str(tmp_path), "FPLOAD_WORKERS": "1"}, timeout=600)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
        outputs.append((cmd, proc.stdout))
    finds = [out for cmd, out in outputs if cmd.startswith("fpload versions find")]
    assert "all" in finds[0] and "live" in finds[0]
    assert "live" not in finds[1]
    audit = next(out for cmd, out in outputs if cmd.startswith("fpload audit --root"))
    assert "resnet-a" in audit
    receipt = json.loads((tmp_path / "receipt.json").read_text())
    assert "syn-s0-000002" not in json.dumps(receipt)
