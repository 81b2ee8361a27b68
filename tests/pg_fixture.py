"""A real PostgreSQL server for the test session: ``initdb`` + ``pg_ctl`` in a temporary folder.

PostgreSQL refuses to run as root, and tests run as root in CI, so the server runs as an
unprivileged user (``nobody``, or ``fpload-pg`` created with ``useradd`` when that is missing) via
``runuser``. It listens on 127.0.0.1 on a free port, with password (SCRAM) authentication for the
superuser ``fpload``; the password reaches clients through ``PGPASSWORD``, as a user's would.

Example::

    def test_x(pg_url):          # a fresh, empty database on the session's server
        open_catalog(pg_url)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "fpload"
PASSWORD = "fpload-test-pw"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self) -> str:
        """A new empty database; returns its URL (no password in it)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), password=self.password, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


def _run_as() -> list[str]:
    """The command prefix that runs the server as an unprivileged user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    for name in ("nobody", "fpload-pg"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "fpload-pg"], check=True)
    return ["runuser", "-u", "fpload-pg", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server (started on first use, stopped at the end).

    Without PostgreSQL installed these tests skip on a developer's machine, naming the package; in
    CI (``CI`` set, where ``.ci/run`` installs it) a missing server is an error, never a skip.
    """
    try:
        _bin("initdb")
    except RuntimeError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{err}; CI runs these tests")
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="fpload-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if prefix:
        user = prefix[2]
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        os.chown(root, uid, gid)
        os.chown(pwfile, uid, gid)
    port = _free_port()
    subprocess.run([*prefix, _bin("initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                    "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8"],
                   check=True, capture_output=True, cwd=root)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
    subprocess.run([*prefix, _bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w",
                    "start"], check=True, capture_output=True, cwd=root)
    try:
        yield PgServer("127.0.0.1", port, USER, PASSWORD)
    finally:
        subprocess.run([*prefix, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def pg_url(pg_server, monkeypatch) -> str:
    """A fresh empty database on the session's server, its password in ``PGPASSWORD``."""
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    return pg_server.create_database()
