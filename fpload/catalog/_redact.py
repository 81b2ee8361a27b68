"""Erasure in the catalog: delete a subject's rows at every revision, keep a redaction marker.

An erasure is not an update: the rows of the erased samples are *deleted* from ``sample_rows``,
whatever their ``valid_from``/``valid_to``, so no revision returns them any more (as-of queries of
older revisions simply lack them). In the same transaction a row of the ``redactions`` table
records who, when, why and how many rows — naming the samples only by :func:`sample_ref` — and a
revision of op ``erase`` chains its digest over those refs.

DuckDB keeps deleted rows in free blocks of the file (``CHECKPOINT`` and ``VACUUM`` leave the
strings readable in the file's bytes: ``tests/catalog/test_redact.py`` shows it), so the erasure
then rewrites the catalog into a fresh file (``COPY FROM DATABASE``) and atomically replaces the old
one (:func:`compact_catalog`).

Example::

    report = erase_rows(cat, ["3f2a..."], erasure_id="e1", reason="consent withdrawn", who="dpo")
    compact_catalog(cat)
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from datetime import datetime, timezone
from typing import Any

from fpload.formats import sample_ref

REDACTIONS_DDL = """
CREATE TABLE IF NOT EXISTS redactions (
    erasure_id VARCHAR PRIMARY KEY,
    rev INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    who VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    rows_deleted INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    sample_refs JSON NOT NULL
)
"""
REDACTION_COLUMNS = ("erasure_id", "rev", "created_at", "who", "reason", "rows_deleted", "samples", "sample_refs")


def who_am_i() -> str:
    """The user name recorded with an erasure (the login, or the uid in a container)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def rows_of(cat, *, subjects: list[str] = (), sample_ids: list[str] = ()) -> list[dict[str, Any]]:
    """Every row, at any revision, of the given subjects or sample ids: ``sample_id``, ``uri``,
    ``subject_id`` (distinct per sample and subject)."""
    with cat._damaged():
        rows = cat._backend.fetchall(
            "SELECT DISTINCT sample_id, uri, subject_id FROM sample_rows WHERE subject_id IN "
            "(SELECT unnest(?::VARCHAR[])) OR sample_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(subjects), list(sample_ids)])
        rows = sorted(rows)
    cat.release()
    return [{"sample_id": s, "uri": u, "subject_id": j} for s, u, j in rows]


def has_redaction(cat, erasure_id: str) -> dict[str, Any] | None:
    """The ``redactions`` row of an erasure (None when absent or the table does not exist yet)."""
    with cat._damaged():
        if not cat._backend.has_table("redactions"):
            return None
        cols = ", ".join(REDACTION_COLUMNS[:-1]) + ", CAST(sample_refs AS VARCHAR)"
        row = cat._backend.fetchall(f"SELECT {cols} FROM redactions WHERE erasure_id = ?",
                                    [erasure_id])
    return dict(zip(REDACTION_COLUMNS, row[0])) if row else None


def erase_rows(cat, sample_ids: list[str], *, erasure_id: str, reason: str, who: str) -> dict[str, Any]:
    """Delete every row of ``sample_ids`` (all revisions) and write the redaction and an ``erase``
    revision, in one transaction. Idempotent: an erasure already recorded returns its row."""
    done = has_redaction(cat, erasure_id)
    if done is not None:
        cat.release()
        return {"revision": done["rev"], "rows_deleted": done["rows_deleted"], "already": True}
    refs = sorted(sample_ref(s) for s in set(sample_ids))
    b = cat._backend
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with cat._writing():
        prev = cat.revision()
        rev = prev.rev + 1
        digest = hashlib.sha256("\n".join([prev.digest, "erase", *refs]).encode()).hexdigest()
        b.execute(REDACTIONS_DDL)
        ids = sorted(set(sample_ids))
        head_rows = b.fetchall("SELECT count(*) FROM sample_rows WHERE valid_to IS NULL AND sample_id IN "
                               "(SELECT unnest(?::VARCHAR[]))", [ids])[0][0]
        deleted = b.fetchall("SELECT count(*) FROM sample_rows WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))",
                             [ids])[0][0]
        b.execute("DELETE FROM sample_rows WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        samples = b.fetchall("SELECT count(*) FROM sample_rows WHERE valid_to IS NULL")[0][0]
        b.execute("INSERT INTO redactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [erasure_id, rev, now, who, reason, deleted, len(ids), json.dumps(refs)])
        b.execute("INSERT INTO revisions VALUES (?, ?, 'erase', ?, ?, 0, ?, ?)",
                  [rev, now, f"erasure {erasure_id}: {len(ids)} sample(s), {deleted} row(s) deleted",
                   -head_rows, samples, digest])
    return {"revision": rev, "rows_deleted": deleted, "already": False}


def compact_catalog(cat) -> None:
    """Rewrite the catalog's storage so deleted rows leave no bytes behind.

    A DuckDB file is copied to ``<catalog>.erase-tmp``, fsynced and renamed over the catalog (a
    crash leaves the old file, rows deleted, and a rerun compacts again); a PostgreSQL catalog runs
    ``VACUUM FULL sample_rows``. Run it while no other process writes the catalog.
    """
    try:
        cat._backend.compact()
    finally:
        cat.release()
