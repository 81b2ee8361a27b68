"""The catalog: samples and metadata in a revisioned DuckDB file, queried with SQL.

Example::

    from fpload.catalog import open_catalog
    cat = open_catalog("catalog.duckdb")
    report = cat.ingest("synthetic/metadata.jsonl")
    table = cat.query("finger IN (2, 7) AND quality >= 40 AND consent")   # a pyarrow.Table
    old = cat.query("consent", revision=1)                                  # as of revision 1
"""

from fpload.catalog._catalog import Catalog, Revision, combine_where, open_catalog
from fpload.catalog._catalog_ingest import IngestReport
from fpload.catalog._query import QueryLimits, compile_filter, load_filter, select_ids
from fpload.catalog._schema import REQUIRED_METADATA, SAMPLE_COLUMNS
from fpload.catalog._sqlcheck import CAST_TYPES, QUERY_FUNCTIONS, parse_where

__all__ = ["Catalog", "IngestReport", "Revision", "open_catalog", "combine_where", "compile_filter",
           "load_filter", "REQUIRED_METADATA", "SAMPLE_COLUMNS", "QUERY_FUNCTIONS", "CAST_TYPES", "QueryLimits",
           "parse_where", "select_ids"]
