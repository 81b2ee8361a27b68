"""fpload._ray: retries of transient task failures, fpload's own errors passed through in one line."""

from pathlib import Path

import pytest

from fpload import _ray
from fpload.errors import EngineError, ImageError


def _calls(path: Path) -> int:
    return len(path.read_text()) if path.exists() else 0


@pytest.mark.ray
def test_transient_failures_retry_and_bad_input_fails_at_once(tmp_path, ray_cluster):
    def flaky(marker: str, fails: int, error: str):
        p = Path(marker)
        with open(p, "a") as fh:
            fh.write("x")
        if len(p.read_text()) <= fails:
            if error == "os":
                raise OSError(f"flaky read of {marker}")
            if error == "image":
                raise ImageError(f"{marker}: not an image (bad input)")
            raise KeyError("a bug")
        return "ok"

    task = _ray.remote(flaky)
    # an OSError twice, then success: retried, in order with the others
    out = list(_ray.ordered_map(task, [(str(tmp_path / "a"), 2, "os"), (str(tmp_path / "b"), 0, "os")], window=2))
    assert out == ["ok", "ok"] and _calls(tmp_path / "a") == 3
    # an OSError on every try: retried TASK_RETRIES times, then one EngineError naming the task
    with pytest.raises(EngineError, match="shard task 1 failed on Ray") as info:
        list(_ray.ordered_map(task, [(str(tmp_path / "c"), 0, "os"), (str(tmp_path / "d"), 99, "os")], window=1,
                              what="shard task"))
    assert "\n" not in str(info.value) and _calls(tmp_path / "d") == 1 + _ray.TASK_RETRIES
    # fpload's own data error: not retried, raised as itself
    with pytest.raises(ImageError) as info:
        list(_ray.ordered_map(task, [(str(tmp_path / "e"), 99, "image")], window=1))
    assert str(info.value) == f"{tmp_path / 'e'}: not an image (bad input)" and _calls(tmp_path / "e") == 1
    # any other exception: not retried, an EngineError
    with pytest.raises(EngineError, match="KeyError|a bug"):
        list(_ray.ordered_map(task, [(str(tmp_path / "f"), 99, "bug")], window=1))
    assert _calls(tmp_path / "f") == 1
