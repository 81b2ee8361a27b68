import platform

import pytest

from fpload.load import _loader
from fpload.load._malloc import tune_host_malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tuning_applies_once_on_glibc():
    assert tune_host_malloc() is True
    assert tune_host_malloc() is True


@pytest.mark.parametrize("flag,env,called", [(True, None, True), (False, None, False), (True, "0", False)])
def test_loader_tunes_only_when_asked(packed, monkeypatch, flag, env, called):
    calls = []
    monkeypatch.setattr(_loader, "tune_host_malloc", lambda: calls.append(1))
    if env is not None:
        monkeypatch.setenv("FPLOAD_TUNE_MALLOC", env)
    loader = _loader.Loader(packed["raw"].path, batch_size=4, device="cpu", augment=False,
                            tune_host_malloc=flag)
    next(iter(loader))
    assert bool(calls) is called
