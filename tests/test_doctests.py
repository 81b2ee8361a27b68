"""Every docstring example of the package runs and prints what it shows (examples that need a
catalog or a GPU are marked ``# doctest: +SKIP`` where they stand), each module's in a fresh folder."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fpload

MODULES = sorted(m.name for m in pkgutil.walk_packages(fpload.__path__, "fpload."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # examples that write (synthesize("data", ...)) write there
    try:
        module = importlib.import_module(name)
    except ImportError as err:   # an optional extra (ray, lightning, pyfing) that is not installed
        pytest.skip(f"{name}: {err}")
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        if test.examples:
            runner.run(test, out=lambda text: None)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (run: " \
                               f"python -m pytest --doctest-modules {module.__file__})"
