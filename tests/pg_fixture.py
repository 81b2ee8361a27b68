"""A real PostgreSQL server for the test session: :func:`fpload.bench._pgserver.temporary_server`
(``initdb`` + ``pg_ctl`` in a temporary folder; as ``nobody`` when the suite runs as root), the same
code that ``fpload bench catalog --backend postgresql`` starts its server with.

Example::

    def test_x(pg_url):          # a fresh, empty database on the session's server
        open_catalog(pg_url)
"""

from __future__ import annotations

import os

import pytest

from fpload.bench import _pgserver

PASSWORD = "fpload-test-pw"


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server (started on first use, stopped at the end).

    Without PostgreSQL installed these tests skip on a developer's machine, naming the package; in
    CI (``CI`` set, where ``.ci/run`` installs it) a missing server is an error, never a skip.
    """
    if not _pgserver.available():
        if os.environ.get("CI"):
            _pgserver.pg_bin("initdb")   # raises, naming the package
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed; CI runs these tests")
    with _pgserver.temporary_server(PASSWORD) as server:
        yield server


@pytest.fixture()
def pg_url(pg_server, monkeypatch) -> str:
    """A fresh empty database on the session's server, its password in ``PGPASSWORD``."""
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    return pg_server.create_database()
