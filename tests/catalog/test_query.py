import pytest

from fpload.catalog import compile_filter, load_filter
from fpload.errors import ConfigError, QueryError


def test_where_selects(catalog):
    t = catalog.query("finger IN (2) AND quality >= 60 AND consent")
    assert t.num_rows > 0
    assert all(r["finger"] == 2 and r["quality"] >= 60 for r in t.to_pylist())
    assert t.num_rows == sum(1 for r in catalog.snapshot().to_pylist() if r["finger"] == 2 and r["quality"] >= 60)


def test_json_extra_is_queryable(catalog):
    assert catalog.query("json_extract_string(extra, '$.site') = 'lab-a'").num_rows == 40


@pytest.mark.parametrize("where,fragment", [
    ("finger IN (2,", "syntax error"),
    ("fingr = 2", "unknown column 'fingr'"),
    ("", "empty"),
])
def test_bad_queries(catalog, where, fragment):
    with pytest.raises(QueryError, match=fragment):
        catalog.query(where)


@pytest.mark.parametrize("attack", [
    "1=1; DELETE FROM sample_rows",
    "1=1); DROP TABLE revisions; SELECT (1",
    "sample_id IN (SELECT sample_id FROM sample_rows)",
    "sample_id IN (SELECT value FROM meta)",
    "1=1) UNION ALL SELECT * FROM revisions --",
    "sample_id IN (SELECT column0 FROM read_csv('/etc/passwd'))",
    "uri IN (SELECT * FROM glob('/*'))",
    "1 = (SELECT count(*) FROM duckdb_settings() WHERE name = 'x') OR current_setting('threads') = 1",
])
def test_queries_cannot_write_or_escape(catalog, attack):
    before = (catalog.head, catalog.snapshot().num_rows, len(catalog.revisions()))
    try:
        result = catalog.query(attack)
    except QueryError:
        result = None
    # whatever happened, the catalog is unchanged and nothing beyond the samples was returned
    assert (catalog.head, catalog.snapshot().num_rows, len(catalog.revisions())) == before
    if result is not None:
        assert result.column_names == catalog.snapshot().column_names
        assert set(result["sample_id"].to_pylist()) <= set(catalog.snapshot()["sample_id"].to_pylist())


@pytest.mark.parametrize("attack", [
    "1=1; DELETE FROM sample_rows",
    "sample_id IN (SELECT sample_id FROM sample_rows)",
    "sample_id IN (SELECT column0 FROM read_csv('/etc/passwd'))",
])
def test_escape_attempts_are_refused_with_clear_error(catalog, attack):
    with pytest.raises(QueryError, match="read-only|is not allowed"):
        catalog.query(attack)


def test_yaml_filter(tmp_path, catalog):
    f = tmp_path / "f.yaml"
    f.write_text("match:\n  finger: [2]\n  quality: {gte: 60}\nwhere: \"subject_id <> 'S000'\"\n")
    assert load_filter(f) == "(finger IN (2)) AND (quality >= 60) AND (subject_id <> 'S000')"
    got = catalog.query(filter=f)
    want = catalog.query("finger = 2 AND quality >= 60 AND subject_id <> 'S000'")
    assert got["sample_id"].to_pylist() == want["sample_id"].to_pylist()
    both = catalog.query("impression = 0", filter=f)
    assert all(r["impression"] == 0 for r in both.to_pylist()) and both.num_rows < got.num_rows


def test_yaml_filter_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown column"):
        compile_filter({"match": {"fingr": 2}}, "f.yaml")
    with pytest.raises(ConfigError, match="unknown operator 'gte2'"):
        compile_filter({"match": {"finger": {"gte2": 2}}}, "f.yaml")
    with pytest.raises(ConfigError, match="key 'wher': unknown key"):
        compile_filter({"wher": "x"}, "f.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("match: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_filter(bad)


def test_strings_are_quoted_safely(catalog):
    where = compile_filter({"match": {"subject_id": "S001' OR '1'='1"}})
    assert catalog.query(where).num_rows == 0
