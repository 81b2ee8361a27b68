"""A throw-away PostgreSQL server in a temporary folder (``initdb`` + ``pg_ctl``), for the catalog
benchmark and the test suite (``tests/pg_fixture.py`` uses this module: one implementation).

PostgreSQL refuses to run as root, so when this process is root the server runs as an
unprivileged user (``nobody``, or ``fpload-pg`` created with ``useradd`` when that is missing) via
``runuser``. It listens on 127.0.0.1 on a free port with password (SCRAM) authentication for the
superuser ``fpload``; clients get the password through ``PGPASSWORD``, as a user's would. Durability
is off (``fsync=off``): the data is thrown away when the server stops.

Example::

    with temporary_server() as server:          # raises PgServerError without PostgreSQL
        url = server.create_database()          # postgresql://fpload@127.0.0.1:PORT/t_…
        os.environ["PGPASSWORD"] = server.password
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fpload.errors import CatalogError

USER = "fpload"


class PgServerError(CatalogError):
    """PostgreSQL's programs are missing, or the temporary server did not start."""


@dataclass(frozen=True)
class PgServer:
    """A running server: connect as ``user`` with ``password`` (no password in :meth:`url`)."""

    host: str
    port: int
    user: str
    password: str

    def url(self, db: str = "postgres") -> str:
        """The URL of one database of the server, e.g. ``server.url("postgres")``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL (no password in it)."""
        return create_database(self.url(), prefix=prefix, password=self.password)


def create_database(server_url: str, *, prefix: str = "t", password: str | None = None) -> str:
    """Create an empty database ``PREFIX_<random>`` on the server of ``server_url`` (its user needs
    CREATEDB) and return its URL: ``server_url`` with the database name replaced. A server that
    cannot be reached or refuses is one :class:`PgServerError` line naming the URL (no password)."""
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    from fpload.catalog._backend import safe_url
    from fpload.catalog._pg_backend import _reason

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    kwargs = {"password": password} if password is not None else {}
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10, **kwargs) as con:
            con.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as err:
        raise PgServerError(f"PostgreSQL server {safe_url(server_url)}: cannot create a database: "
                            f"{_reason(err)} (give a server whose user may CREATE DATABASE; password "
                            "from PGPASSWORD or ~/.pgpass)") from None
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def drop_database(url: str, *, password: str | None = None) -> None:
    """Drop the database a URL names, connecting to the server's ``postgres`` database."""
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    kwargs = {"password": password} if password is not None else {}
    with psycopg.connect(admin, autocommit=True, connect_timeout=10, **kwargs) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_bin(name: str) -> str:
    """The path of a PostgreSQL program (``initdb``, ``pg_ctl``): on PATH, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian's packages); :class:`PgServerError` when neither has it."""
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    raise PgServerError(f"{name} not found: install PostgreSQL (apt-get install postgresql) "
                        "or give a server's URL")


def available() -> bool:
    """Whether ``initdb`` and ``pg_ctl`` are installed, so :func:`temporary_server` can run."""
    try:
        pg_bin("initdb"), pg_bin("pg_ctl")
    except PgServerError:
        return False
    return True


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


def _run(cmd: list[str], root: Path, what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, cwd=root, text=True)
    if res.returncode != 0:
        last = (res.stderr or res.stdout).strip().splitlines()
        raise PgServerError(f"temporary PostgreSQL server in {root}: {what} failed "
                            f"(exit {res.returncode}): {last[-1] if last else 'no output'}")


@contextlib.contextmanager
def temporary_server(password: str | None = None) -> Iterator[PgServer]:
    """Start a PostgreSQL server in a temporary folder; stop it and delete the folder on exit.

    >>> with temporary_server() as s: print(s.url())     # doctest: +SKIP
    postgresql://fpload@127.0.0.1:41723/postgres
    """
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    password = password or secrets.token_hex(16)
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="fpload-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    try:
        if prefix:
            user = pwd.getpwnam(prefix[2])
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        port = _free_port()
        _run([*prefix, initdb, "-D", str(data), "-U", USER, "--pwfile", str(pwfile), "--auth", "scram-sha-256",
              "-E", "UTF8", "--locale", "C.UTF-8"], root, "initdb")
        pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
        _run([*prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"], root,
             "pg_ctl start")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield PgServer("127.0.0.1", port, USER, password)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
