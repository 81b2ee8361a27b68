"""Issue 10 §1: a query is one allow-listed expression, parsed (never pasted), selecting ids only,
bounded in time and memory; `catalog update` changes by id and refuses a query matching nothing."""

import json

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.catalog import QueryLimits, compile_filter, load_filter, parse_where
from fpload.catalog import _query
from fpload.cli import main
from fpload.errors import ConfigError, NoMatchError, QueryError

UPDATE_UNION = ("false) UNION ALL SELECT sample_id FROM samples UNION ALL SELECT sample_id FROM samples --")
PACK_UNION = "consent))) UNION ALL SELECT * REPLACE (true AS consent) FROM samples WHERE NOT consent --"
CARTESIAN = "(SELECT sum(hash(a.range+b.range)) FROM range(200000) a, range(200000) b) <> 0"


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def state(cat):
    """Everything a query must never change: revisions, their digests, and every stored row."""
    rows = cat._con.execute("SELECT count(*), count(DISTINCT sample_id) FROM sample_rows").fetchall()[0]
    return [r.to_dict() for r in cat.revisions()], rows, cat.snapshot().to_pylist()


def assert_one_line_error(code, err, want_code, *fragments):
    assert code == want_code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


# -- the examples ------------------------------------------------------------------------

@pytest.mark.parametrize("where", [UPDATE_UNION, UPDATE_UNION.removesuffix(" --"),
                                   "false UNION ALL SELECT sample_id FROM samples"])
def test_update_union_injection_is_refused_and_changes_nothing(tmp_path, catalog, capsys, where):
    path = catalog.path
    before = state(catalog)
    catalog.close()
    code, out, err = run(capsys, "catalog", "update", where, "--set", "quality=1", "--catalog", path)
    assert_one_line_error(code, err, 2, "query")
    assert "changed" not in out
    from fpload.catalog import open_catalog

    with open_catalog(path) as cat:
        assert state(cat) == before
        assert cat.snapshot().num_rows == 40


@pytest.mark.parametrize("where", [PACK_UNION, PACK_UNION.removesuffix(" --")])
def test_pack_union_injection_cannot_pack_a_withdrawn_subject(tmp_path, catalog, capsys, where):
    catalog.update("subject_id = 'S003'", {"consent": False})
    path = catalog.path
    catalog.close()
    root = tmp_path / "versions"
    code, out, err = run(capsys, "pack", "--catalog", path, "--where", where, "--out", root, "--name", "v",
                         "--workers", "1", "--config", "configs/pack/demo.yaml")
    assert_one_line_error(code, err, 2, "query")
    assert not list(root.glob("v/*/manifest.json"))
    # the honest query packs the 36 consented samples, each once, with their own consent
    code, out, err = run(capsys, "pack", "--catalog", path, "--where", "consent", "--out", root, "--name", "v",
                         "--workers", "1", "--config", "configs/pack/demo.yaml", "--json")
    assert code == 0, err
    rows = pq.read_table(root / "v" / json.loads(out)["version_id"] / "samples.parquet").to_pylist()
    assert len(rows) == len({r["sample_id"] for r in rows}) == 36
    assert all(r["consent"] and r["subject_id"] != "S003" for r in rows)


@pytest.mark.parametrize("where,named", [
    ("1 = (SELECT count(*) FROM duckdb_settings() WHERE name = 'x')", "subquery"),
    ("EXISTS (SELECT * FROM duckdb_settings())", "subquery"),
    ("duckdb_settings() IS NOT NULL", "table function 'duckdb_settings'"),
    ("current_setting('threads') = 1", "function 'current_setting'"),
    ("sample_id = current_setting('home_directory')", "function 'current_setting'"),
    ("pragma_version() IS NOT NULL", "table function 'pragma_version'"),
    ("sample_id IN (SELECT library_version FROM pragma_version())", "subquery"),
    ("duckdb_databases() IS NOT NULL", "table function 'duckdb_databases'"),
    ("uri IN (SELECT path FROM duckdb_databases())", "subquery"),
    ("query('SELECT 1') IS NOT NULL", "table function 'query'"),
    ("sample_id IN (SELECT * FROM query('SELECT current_setting(''temp_directory'')'))", "subquery"),
    ("getvariable('x') IS NULL", "function 'getvariable'"),
    ("count(*) > 0", "aggregate function"),
    ("sum(quality) OVER () > 0", "window function"),
    ("sample_id IN (SELECT column0 FROM read_csv('/etc/passwd'))", "subquery"),
    ("read_csv('/etc/passwd') IS NULL", "table function 'read_csv'"),
    ("main.lower(sample_id) = 'x'", "qualified function name"),
    ("finger = ?", "parameter"),
    ("finger::mytype = 2", "cast to type 'mytype'"),
    ("now() > captured_at", "function 'now'"),
])
def test_settings_readers_and_other_escapes_are_refused_by_name(catalog, where, named):
    before = state(catalog)
    with pytest.raises(QueryError, match="is not allowed") as info:
        catalog.query(where)
    assert named in str(info.value) and "\n" not in str(info.value)
    assert state(catalog) == before


def test_the_cartesian_product_is_refused_before_it_runs(catalog):
    with pytest.raises(QueryError, match="subquery"):
        catalog.query(CARTESIAN)


def test_the_time_limit_stops_the_cartesian_product():
    # the query, run as is in the sandbox (no validation): the limit alone must stop it
    limits = QueryLimits.resolve(timeout=1)
    con = _query._sandbox(limits)
    try:
        with pytest.raises(QueryError, match=r"time limit of 1 s; raise it with --query-timeout .*"
                                             r"FPLOAD_QUERY_TIMEOUT"):
            _query._execute(con, "SELECT " + CARTESIAN, limits, CARTESIAN)
    finally:
        con.close()


def test_the_memory_limit_stops_a_query_that_needs_more():
    limits = QueryLimits.resolve(timeout=120, memory_limit="64MB")
    con = _query._sandbox(limits)
    try:
        with pytest.raises(QueryError, match="memory limit of 64MB; raise it with --query-memory .*"
                                             "FPLOAD_QUERY_MEMORY"):
            _query._execute(con, "SELECT count(*) FROM (SELECT range FROM range(30000000) ORDER BY hash(range))",
                            limits, "sort")
        # and a query cannot lift its own limits
        with pytest.raises(Exception):
            con.execute("SET memory_limit = '100GB'")
    finally:
        con.close()


# -- the shape of a query ------------------------------------------------------------------------

@pytest.mark.parametrize("where,fragment", [
    ("consent -- and a hidden note", "comment"),
    ("consent /* ) UNION ALL SELECT 1 */", "comment"),
    ("true) OR (true", "syntax error"),
    ("true ORDER BY 1", "more than one WHERE expression"),
    ("true LIMIT 1", "more than one WHERE expression"),
    ("true GROUP BY finger", "more than one WHERE expression"),
    ("true WINDOW w AS ()", "more than one WHERE expression"),
    ("consent UNION ALL SELECT 1 FROM samples", "UNION"),
    ("true; DROP TABLE sample_rows", "statements"),
    ("finger", "is a TINYINT, not a condition"),
    ("samples.finger = 2", "unknown column 'samples.finger'"),
    ("current_date > captured_at", "unknown column 'current_date'"),
    ("extra->'$.site' = 'lab-a'", "'->' operator"),
])
def test_a_query_is_exactly_one_condition(catalog, where, fragment):
    with pytest.raises(QueryError, match=None) as info:
        catalog.query(where)
    assert fragment in str(info.value)


def test_a_filter_cannot_be_bypassed_by_a_where_that_closes_its_parenthesis(tmp_path, catalog):
    f = tmp_path / "f.yaml"
    f.write_text("match:\n  finger: [2]\n")
    with pytest.raises(QueryError, match="syntax error"):
        catalog.query("true) OR (true", filter=f)
    with pytest.raises(ConfigError, match="key 'where': .*subquery"):
        compile_filter({"where": "sample_id IN (SELECT sample_id FROM samples)"}, "f.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("where: \"current_setting('threads') = 1\"\n")
    with pytest.raises(ConfigError, match="bad.yaml: key 'where': .*'current_setting'"):
        load_filter(bad)


@pytest.mark.parametrize("where,keep", [
    ("subject_id LIKE 'S00%' AND finger NOT IN (1)", lambda r: r["subject_id"].startswith("S00") and r["finger"] != 1),
    ("regexp_matches(subject_id, '[13]$') OR quality BETWEEN 40 AND 60",
     lambda r: r["subject_id"][-1] in "13" or (r["quality"] is not None and 40 <= r["quality"] <= 60)),
    ("json_extract_string(extra, '$.site') = 'lab-a' AND impression = 1", lambda r: r["impression"] == 1),
    ("extra->>'$.site' = 'lab-a' AND lower(subject_id) = 's004'", lambda r: r["subject_id"] == "S004"),
    ("CASE WHEN finger = 2 THEN impression = 0 ELSE false END", lambda r: r["finger"] == 2 and r["impression"] == 0),
    ("CAST(quality AS INTEGER) >= 50 AND split IS NULL", lambda r: round(r["quality"]) >= 50 and r["split"] is None),
    ("coalesce(split, 'none') = 'none' AND synthetic IS NOT NULL", lambda r: r["split"] is None),
])
def test_allowed_expressions_select_what_they_say(catalog, where, keep):
    want = [r["sample_id"] for r in catalog.snapshot().to_pylist() if keep(r)]
    assert want, "the example should select something"
    assert catalog.query(where)["sample_id"].to_pylist() == want


def test_allow_list_is_explicit():
    from fpload.catalog import QUERY_FUNCTIONS

    assert {"lower", "regexp_matches", "json_extract_string", "date_trunc", "abs", "~~"} <= QUERY_FUNCTIONS
    assert not {"current_setting", "query", "read_csv", "getvariable", "now", "count", "repeat"} & QUERY_FUNCTIONS
    assert parse_where("finger = 2")["class"] == "COMPARISON"


# -- update: by id, and never silently nothing ---------------------------------------------------

def test_update_matching_nothing_is_an_error(catalog, capsys):
    before = state(catalog)
    with pytest.raises(NoMatchError, match="matches no sample at revision 1"):
        catalog.update("subject_id = 'S0033'", {"consent": False})
    assert state(catalog) == before
    path = catalog.path
    catalog.close()
    code, out, err = run(capsys, "catalog", "update", "subject_id = 'S0033'", "--set", "consent=false",
                         "--catalog", path)
    assert_one_line_error(code, err, 1, "matches no sample")


def test_update_changes_each_matched_sample_once(catalog):
    rev, n = catalog.update("subject_id IN ('S001', 'S001', 'S002') OR subject_id = 'S001'", {"quality": 1})
    assert (rev, n) == (2, 8)
    snap = catalog.snapshot().to_pylist()
    assert len(snap) == len({r["sample_id"] for r in snap}) == 40
    assert sum(r["quality"] == 1 for r in snap) == 8
    assert catalog.update("subject_id = 'S001'", {"quality": 1}) == (None, 0)  # matched, nothing to change


# -- limits: arguments, environment, CLI -----------------------------------------------------------

def test_limits_come_from_arguments_then_environment(monkeypatch):
    monkeypatch.delenv("FPLOAD_QUERY_TIMEOUT", raising=False)
    monkeypatch.delenv("FPLOAD_QUERY_MEMORY", raising=False)
    assert QueryLimits.resolve() == QueryLimits(30.0, "2GB")
    monkeypatch.setenv("FPLOAD_QUERY_TIMEOUT", "7.5")
    monkeypatch.setenv("FPLOAD_QUERY_MEMORY", "512mb")
    assert QueryLimits.resolve() == QueryLimits(7.5, "512MB")
    assert QueryLimits.resolve(timeout=3, memory_limit="1GiB") == QueryLimits(3.0, "1GIB")
    for var, value in [("FPLOAD_QUERY_TIMEOUT", "soon"), ("FPLOAD_QUERY_TIMEOUT", "-1"),
                       ("FPLOAD_QUERY_MEMORY", "lots"), ("FPLOAD_QUERY_MEMORY", "0GB")]:
        monkeypatch.setenv(var, value)
        with pytest.raises(ConfigError, match=var):
            QueryLimits.resolve()
        monkeypatch.delenv(var)
    with pytest.raises(ConfigError, match="must be a positive size"):
        QueryLimits.resolve(memory_limit="2GB; SET x=1")
    with pytest.raises(ConfigError, match="positive number of seconds"):
        QueryLimits.resolve(timeout=0)


def test_every_consumer_runs_its_query_within_the_given_limits(tmp_path, catalog, capsys, monkeypatch):
    seen = []
    real = _query._execute

    def spy(con, sql, limits, where):
        seen.append(limits)
        return real(con, sql, limits, where)

    monkeypatch.setattr(_query, "_execute", spy)
    catalog.query("consent", timeout=5, memory_limit="300MB")
    catalog.update("subject_id = 'S001'", {"quality": 3}, timeout=6, memory_limit="301MB")
    from fpload.pack import PackConfig
    from fpload.pack import pack_version

    pack_version(catalog, out=tmp_path / "v", name="v", where="consent", config=PackConfig(encoding="raw"),
                 query_timeout=7, query_memory_limit="302MB")
    path = catalog.path
    catalog.close()
    monkeypatch.setenv("FPLOAD_QUERY_MEMORY", "303MB")
    code, _, err = run(capsys, "catalog", "query", "consent", "--catalog", path, "--query-timeout", "8")
    assert code == 0, err
    code, _, err = run(capsys, "catalog", "update", "subject_id = 'S001'", "--set", "quality=4", "--catalog",
                       path, "--query-timeout", "9", "--query-memory", "304MB")
    assert code == 0, err
    assert seen == [QueryLimits(5.0, "300MB"), QueryLimits(6.0, "301MB"), QueryLimits(7.0, "302MB"),
                    QueryLimits(8.0, "303MB"), QueryLimits(9.0, "304MB")]


# -- fuzz: no text changes the catalog; a query selects a subset of rows, each unaltered, or fails ---

_TOKENS = ["consent", "finger", "sample_id", "subject_id", "quality", "extra", "=", "<>", ">=", "2", "'S001'",
           "(", ")", ",", ";", "--", "/*", "*/", "'", '"', "AND", "OR", "NOT", "IN", "IS", "NULL", "UNION",
           "ALL", "SELECT", "*", "FROM", "samples", "sample_rows", "WHERE", "LIMIT 1", "ORDER BY 1", "true",
           "false", "current_setting('threads')", "duckdb_settings()", "query('SELECT 1')", "lower(",
           "json_extract_string(extra, '$.site')", "REPLACE (true AS consent)", "$1", "?", "::VARCHAR",
           "CASE WHEN", "THEN", "ELSE", "END", "BETWEEN", "LIKE", "'%'", "\\", "\x00", "\n",
           ") UNION ALL SELECT * FROM samples", ") UNION ALL SELECT * REPLACE (true AS consent) FROM samples",
           ") UNION ALL SELECT sample_id FROM samples"]
_TAILS = ["UNION ALL SELECT * FROM samples", "UNION ALL SELECT * REPLACE (0 AS quality) FROM samples",
          "OR true", "; SELECT 1"]
# injection-shaped text: a condition, some ')' to close the WHERE, a tail, something to hide the rest
_injections = st.builds(lambda pre, n, tail, end: f"{pre}{')' * n} {tail} {end}",
                        st.sampled_from(["true", "consent", "false"]), st.integers(1, 3),
                        st.sampled_from(_TAILS), st.sampled_from(["--", "AND (true", ""]))
_queries = st.one_of(_injections, st.text(max_size=40),
                     st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12).map(" ".join))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=_queries)
def test_fuzz_no_text_changes_the_catalog_or_a_row(session_catalog, where):
    cat = session_catalog
    before = state(cat)
    snap = {r["sample_id"]: r for r in before[2]}
    try:
        got = cat.query(where).to_pylist()
    except QueryError as err:
        assert "\n" not in str(err).strip() or "\n" in where or "\r" in where
        got = None
    assert state(cat) == before
    if got is not None:
        ids = [r["sample_id"] for r in got]
        assert len(ids) == len(set(ids)) and set(ids) <= set(snap)
        assert all(r == snap[r["sample_id"]] for r in got)
