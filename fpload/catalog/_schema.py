"""Catalog schema: columns, types, and the DuckDB DDL (schema version 2).

Version 2 added ``consent_scope`` (the purposes a subject consented to, e.g. ``["training",
"evaluation"]``; NULL: not limited by purpose) and ``consent_until`` (the last day consent holds;
NULL: no end). A writer opening a version-1 catalog adds the two columns in place
(:data:`MIGRATIONS`); a reader of a version-1 catalog sees them as NULL.
"""

from __future__ import annotations

import re

CATALOG_SCHEMA_VERSION = 2
#: older schema versions this fpload reads, and migrates in place when it opens them to write
READABLE_SCHEMA_VERSIONS = (1, 2)

#: the columns a query sees, in order, with their DuckDB types
SAMPLE_COLUMNS: dict[str, str] = {
    "sample_id": "VARCHAR",
    "uri": "VARCHAR",
    "subject_id": "VARCHAR",
    "finger": "TINYINT",
    "impression": "INTEGER",
    "sensor": "VARCHAR",
    "ppi": "INTEGER",
    "width": "INTEGER",
    "height": "INTEGER",
    "format": "VARCHAR",
    "quality": "DOUBLE",
    "split": "VARCHAR",
    "consent": "BOOLEAN",
    "consent_scope": "VARCHAR[]",
    "consent_until": "DATE",
    "synthetic": "BOOLEAN",
    "captured_at": "TIMESTAMP",
    "extra": "JSON",
}

#: metadata-file columns an ingest needs
REQUIRED_METADATA = ("file", "subject_id", "finger", "impression", "sensor", "ppi", "consent")
#: metadata-file columns an ingest understands besides the required ones; others go to ``extra``
OPTIONAL_METADATA = ("quality", "split", "synthetic", "captured_at", "consent_scope", "consent_until")
#: columns ``fpload catalog update`` may change
UPDATABLE = ("consent", "split", "quality", "sensor", "subject_id", "finger", "impression", "consent_scope",
             "consent_until")
#: metadata fields a metadata file sets for a sample (besides ``file``); re-ingesting known bytes
#: with any of them changed is an error, or a new revision with ``ingest --update``
METADATA_FIELDS = ("subject_id", "finger", "impression", "sensor", "ppi", "consent", "quality", "split",
                   "synthetic", "captured_at", "extra", "consent_scope", "consent_until")
#: what a split name may be (pack names shards after it): letters, digits and '_'
SPLIT_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
#: what a consent purpose may be (``consent_scope`` entries, ``PackConfig.purpose``)
PURPOSE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
#: columns each schema version added, with their types: a v1 catalog lacks those of version 2
ADDED_IN = {2: {"consent_scope": "VARCHAR[]", "consent_until": "DATE"}}
#: statements that bring a catalog of the key's schema version to the next one (in one transaction)
MIGRATIONS = {1: [f"ALTER TABLE sample_rows ADD COLUMN {c} {t}" for c, t in ADDED_IN[2].items()]}
#: columns compared to decide whether a repeated image conflicts with what the catalog holds
IDENTITY_FIELDS = ("subject_id", "finger", "impression", "sensor", "ppi")


def ddl(types: dict[str, str] | None = None) -> str:
    """The schema's CREATE TABLE statements; ``types`` maps a DuckDB type to the store's own
    (PostgreSQL: ``{"TINYINT": "SMALLINT", "DOUBLE": "DOUBLE PRECISION", "JSON": "TEXT"}``).

    >>> "consent BOOLEAN" in ddl()
    True
    """
    types = types or {}
    cols = ", ".join(f"{c} {types.get(t, t)}" for c, t in SAMPLE_COLUMNS.items())
    return f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS revisions (
    rev INTEGER PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    op VARCHAR NOT NULL,
    message VARCHAR,
    added INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    digest VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS sample_rows (
    {cols},
    valid_from INTEGER NOT NULL,
    valid_to INTEGER
);
"""


DDL = ddl()
