"""``fpload catalog migrate SRC DST``: copy a catalog, every revision, between stores.

The copy keeps everything that makes a catalog itself: its ``catalog_id``, every revision row
(number, time, op, message, counts, digest), every stored row with its ``valid_from``/``valid_to``,
and the ``redactions`` of erasures. So as-of queries, diffs and pack ``version_id`` s are the same
on both sides. The destination must be empty (a new DuckDB file or a database without a catalog);
the copy is one write transaction there, so a failure leaves it without a catalog. After the copy,
every revision's digest and sample count are checked against the source.

Example::

    migrate_catalog("catalog.duckdb", "postgresql://fp@db.internal/fingerprints")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fpload.catalog._schema import CATALOG_SCHEMA_VERSION, SAMPLE_COLUMNS
from fpload.errors import CatalogError

_BATCH = 50_000


def migrate_catalog(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Copy catalog ``src`` (all revisions, rows and redactions) into the empty catalog ``dst``.

    Returns ``{"revisions": n, "rows": n, "redactions": n, "head": rev, "digest": hex}``.

    >>> migrate_catalog("catalog.duckdb", "postgresql://fp@db/cat")   # doctest: +SKIP
    {'revisions': 4, 'rows': 84, 'redactions': 0, 'head': 3, 'digest': '…'}
    """
    from fpload.catalog._backend import open_backend
    from fpload.catalog._catalog import open_catalog
    from fpload.catalog._lock import lock_timeout
    from fpload.catalog._redact import REDACTIONS_DDL, REDACTION_COLUMNS

    source = open_catalog(src, create=False, read_only=True)
    try:
        if source.schema_version != CATALOG_SCHEMA_VERSION:
            raise CatalogError(f"{source.path} has catalog schema {source.schema_version}: open it for writing "
                               "once (any `fpload catalog` write migrates it) before copying it")
        target = open_backend(dst, read_only=False, lock_timeout=lock_timeout())
        if target.exists():
            target.close()
            raise CatalogError(f"{target.name} already holds a catalog: migrate copies into an empty one")
        sb = source._backend
        meta = sb.fetchall("SELECT key, value FROM meta")
        revisions = sb.fetchall("SELECT * FROM revisions ORDER BY rev")
        redactions = (sb.fetchall(f"SELECT {', '.join(REDACTION_COLUMNS[:-1])}, CAST(sample_refs AS VARCHAR) "
                                  "FROM redactions ORDER BY rev") if sb.has_table("redactions") else [])
        cols = ", ".join([*SAMPLE_COLUMNS, "valid_from", "valid_to"])
        rows = sb.arrow(f"SELECT {cols} FROM sample_rows ORDER BY valid_from, sample_id")
        source.release()
        try:
            with target.write():
                target.create_tables()
                for k, v in meta:
                    target.execute("INSERT INTO meta VALUES (?, ?)", [k, v])
                for r in revisions:
                    target.execute("INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(r))
                if redactions:
                    target.execute(REDACTIONS_DDL)
                    for r in redactions:
                        target.execute("INSERT INTO redactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(r))
                for start in range(0, rows.num_rows, _BATCH):
                    target.insert_rows(rows.slice(start, _BATCH))
        finally:
            target.close()
    finally:
        source.close()
    with open_catalog(dst, create=False, read_only=True) as copy, \
            open_catalog(src, create=False, read_only=True) as again:
        for a, b in zip(again.revisions(), copy.revisions(), strict=True):
            if (a.rev, a.digest, a.samples) != (b.rev, b.digest, b.samples) or \
                    again.snapshot(a.rev).num_rows != copy.snapshot(b.rev).num_rows:
                raise CatalogError(f"copy of {again.path} to {copy.path} differs at revision {a.rev}")
        head = copy.revision()
    return {"revisions": len(revisions), "rows": rows.num_rows, "redactions": len(redactions),
            "head": head.rev, "digest": head.digest}
