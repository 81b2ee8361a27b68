"""Catalog schema: columns, types, and the DuckDB DDL (schema version 1)."""

from __future__ import annotations

import re

CATALOG_SCHEMA_VERSION = 1

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
    "synthetic": "BOOLEAN",
    "captured_at": "TIMESTAMP",
    "extra": "JSON",
}

#: metadata-file columns an ingest needs
REQUIRED_METADATA = ("file", "subject_id", "finger", "impression", "sensor", "ppi", "consent")
#: metadata-file columns an ingest understands besides the required ones; others go to ``extra``
OPTIONAL_METADATA = ("quality", "split", "synthetic", "captured_at")
#: columns ``fpload catalog update`` may change
UPDATABLE = ("consent", "split", "quality", "sensor", "subject_id", "finger", "impression")
#: metadata fields a metadata file sets for a sample (besides ``file``); re-ingesting known bytes
#: with any of them changed is an error, or a new revision with ``ingest --update``
METADATA_FIELDS = ("subject_id", "finger", "impression", "sensor", "ppi", "consent", "quality", "split",
                   "synthetic", "captured_at", "extra")
#: what a split name may be (pack names shards after it): letters, digits and '_'
SPLIT_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
#: columns compared to decide whether a repeated image conflicts with what the catalog holds
IDENTITY_FIELDS = ("subject_id", "finger", "impression", "sensor", "ppi")

DDL = f"""
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
    {", ".join(f"{c} {t}" for c, t in SAMPLE_COLUMNS.items())},
    valid_from INTEGER NOT NULL,
    valid_to INTEGER
);
"""
