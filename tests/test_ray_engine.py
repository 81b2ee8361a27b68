"""fpload._ray: retries of transient task failures, fpload's own errors passed through in one line."""

import os
import socket
import subprocess
import sys
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


def test_connect_bounds_apply_only_while_connecting(monkeypatch):
    """Ray's connect settings are added while ray.init runs, never over the user's, and removed after."""
    pytest.importorskip("ray")
    first, second = list(_ray.CONNECT_BOUNDS)
    monkeypatch.delenv(first, raising=False)
    monkeypatch.setenv(second, "42")
    with _ray._bounded(_ray.CONNECT_BOUNDS):
        assert os.environ[first] == _ray.CONNECT_BOUNDS[first] and os.environ[second] == "42"
    assert first not in os.environ and os.environ[second] == "42"


def test_an_unreachable_ray_client_address_gives_only_fpload_s_line(monkeypatch, recwarn):
    """ray:// (Ray Client) gives up after about 30 s by itself (measured: 30.7 s for
    ray://127.0.0.1:1) and warns; fpload's one line says the same, so the warning is not shown."""
    ray = pytest.importorskip("ray")
    import warnings

    def init(**kw):
        warnings.warn("Ray Client connection timed out. Ensure that the Ray Client port ...", UserWarning)
        raise ConnectionError("ray client connection timeout")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(EngineError, match=r"cannot connect to the Ray cluster at ray://10\.0\.0\.1:10001 "
                                          r"\(ray client connection timeout\)"):
        _ray.connect("ray://10.0.0.1:10001")
    assert not [w for w in recwarn if "Ray Client" in str(w.message)]


@pytest.mark.ray
def test_an_address_where_no_cluster_listens_fails_in_one_line(tmp_path):
    """`fpload pack --engine ray --address 127.0.0.1:PORT` with nothing there: fpload's one-line
    EngineError and its exit code, no traceback; Ray's own retries (20 attempts of ~40 s by default,
    about ten minutes) are bounded by fpload._ray.CONNECT_BOUNDS (one attempt, ~15 s)."""
    pytest.importorskip("ray")
    from fpload.catalog import open_catalog
    from fpload.testing import make_captures

    with socket.socket() as sock:  # a port that was free a moment ago, and is not listened on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "caps", subjects=1, fingers=1, impressions=2, seed=3))
    cat.close()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", *_ray.CONNECT_BOUNDS)}
    cli = subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())", "pack",
                          "--where", "consent", "--catalog", str(tmp_path / "cat.duckdb"), "--out",
                          str(tmp_path / "out"), "--name", "v", "--engine", "ray", "--address", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=240, env=env)
    assert cli.returncode == EngineError.exit_code and "Traceback" not in cli.stderr
    ours = [line for line in cli.stderr.splitlines() if line.startswith("fpload: ")]
    assert len(ours) == 1 and ours[0].startswith(f"fpload: error: cannot connect to the Ray cluster at 127.0.0.1:{port} (")
    assert "RAY_AUTH_MODE=token" in ours[0]  # the hint for a cluster with token authentication
    assert not (tmp_path / "out" / "v").exists() or list((tmp_path / "out" / "v").iterdir()) == []
