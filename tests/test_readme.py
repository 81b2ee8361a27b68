"""The README's Python code block runs as written (on tiny generated data)."""

import re
from pathlib import Path

from fpload.testing import make_synth_captures

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no Python example"
    make_synth_captures(tmp_path / "data", subjects=8, fingers=1, impressions=2)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    assert "torch.Size" in capsys.readouterr().out
