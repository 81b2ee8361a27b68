import pytest
from PIL import Image

from fpload.cli import main

pytestmark = pytest.mark.usefixtures("plugin")


def test_preview_writes_a_grid(tmp_path, packed, capsys):
    out = tmp_path / "grid.png"
    code = main(["preview", str(packed["raw"].path), "--out", str(out), "-n", "3", "--draws", "2"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.width > 200 and img.height > 200
