"""Open a catalog's DuckDB file under DuckDB's rule: one read-write process *or* many read-only ones.

DuckDB locks the whole file: a read-write connection takes an exclusive lock, a read-only one a
shared lock (see https://duckdb.org/docs/connect/concurrency). fpload therefore keeps connections
short: a :class:`~fpload.catalog.Catalog` connects on first use and lets go after each revision it
writes (and a pack lets go once it has taken its snapshot), so readers (``catalog query``,
``stats``, ``revisions``, a pack's snapshot) share the file and only wait while a write is in
progress. Whoever finds the file locked retries with a growing pause until a deadline —
:data:`DEFAULT_LOCK_TIMEOUT` seconds, or ``FPLOAD_CATALOG_TIMEOUT`` — and then fails with
:class:`~fpload.errors.CatalogBusyError`, one line naming the catalog and the process holding it.

Example::

    con = connect("catalog.duckdb", read_only=True, timeout=5)   # waits up to 5 s for a writer
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

from fpload.config import env_catalog_timeout
from fpload.errors import CatalogBusyError, CatalogError, UsageError

#: seconds a catalog waits for another process's lock before giving up (``FPLOAD_CATALOG_TIMEOUT``)
DEFAULT_LOCK_TIMEOUT = 60.0
TIMEOUT_ENV = "FPLOAD_CATALOG_TIMEOUT"

_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def lock_timeout(value: float | None = None) -> float:
    """Seconds to wait for a locked catalog: ``value`` if given, else ``FPLOAD_CATALOG_TIMEOUT``, else 60.

    >>> lock_timeout(5)
    5.0
    """
    if value is None:
        text = env_catalog_timeout()
        if text is None:
            return DEFAULT_LOCK_TIMEOUT
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds (e.g. 60; 0: do not wait)") from None
        source = TIMEOUT_ENV
    else:
        source = "lock_timeout"
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"{source}={value!r}: the catalog lock timeout must be a finite number of seconds >= 0")
    return float(value)


def _lock_conflict(err: duckdb.Error) -> bool:
    return isinstance(err, duckdb.IOException) and "Could not set lock" in str(err)


def connect(path: str | Path, *, read_only: bool, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path``, waiting up to ``timeout`` seconds while another process holds it.

    Raises :class:`CatalogBusyError` (naming the file and the holding process) when the wait ends,
    :class:`CatalogError` when the file cannot be opened for any other reason.
    """
    timeout = lock_timeout(timeout)
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            if isinstance(err, duckdb.ConnectionException) and "different configuration" in first:
                raise CatalogError(
                    f"cannot open catalog {path} {'read-only' if read_only else 'for writing'}: this process "
                    "already has it open the other way; close that Catalog first") from None
            if not _lock_conflict(err):
                raise CatalogError(f"cannot open catalog {path}: {first}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                m = _HOLDER.search(str(err))
                holder = f"process {m['pid']} ({Path(m['exe']).name})" if m else "another process"
                raise CatalogBusyError(
                    f"catalog {path} is in use by {holder}; waited {timeout:g} s for it "
                    f"(set {TIMEOUT_ENV} to wait longer)") from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)
