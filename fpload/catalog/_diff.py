"""``fpload catalog diff --from R1 --to R2``: rows added, removed and changed between two revisions.

The catalog stores every version of a row with ``valid_from`` / ``valid_to`` revisions, so a diff
is two DuckDB queries over ``sample_rows`` and never loops over samples in Python (a PostgreSQL
catalog hands the rows of the span to an in-memory DuckDB first: ``Backend.duckdb_view``):

- the **net** change from R1 to R2 joins the two snapshots by ``sample_id``: a sample only at R2
  is *added*, only at R1 *removed*, in both with any field distinct (``IS DISTINCT FROM``, so a
  NULL that became a value counts) *changed*, naming the fields;
- the **per-revision** change of each revision r in (R1, R2] joins the rows r opened
  (``valid_from = r``) with the rows it closed (``valid_to = r``).

Example::

    >>> with open_catalog("cat.duckdb", read_only=True) as cat:       # doctest: +SKIP
    ...     d = diff_catalog(cat, 1, 3)
    >>> d.totals, d.fields                                              # doctest: +SKIP
    ({'added': 40, 'removed': 0, 'changed': 4}, {'consent': 4})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fpload.catalog._schema import SAMPLE_COLUMNS
from fpload.errors import UsageError

if TYPE_CHECKING:
    from fpload.catalog._catalog import Catalog

_FIELDS = [c for c in SAMPLE_COLUMNS if c != "sample_id"]


def _changed_fields(x: str, y: str) -> str:
    """SQL: the list of field names on which row aliases ``x`` and ``y`` differ."""
    items = ", ".join(f"CASE WHEN {x}.{c} IS DISTINCT FROM {y}.{c} THEN '{c}' END" for c in _FIELDS)
    return f"list_filter([{items}], lambda f: f IS NOT NULL)"


def _at(rev: int) -> str:
    return f"valid_from <= {int(rev)} AND (valid_to IS NULL OR valid_to > {int(rev)})"


_NET = """
CREATE TEMP TABLE _net AS
WITH s1 AS (SELECT {cols} FROM sample_rows WHERE {at1}), s2 AS (SELECT {cols} FROM sample_rows WHERE {at2})
SELECT coalesce(s1.sample_id, s2.sample_id) AS sample_id,
       CASE WHEN s1.sample_id IS NULL THEN 'added' WHEN s2.sample_id IS NULL THEN 'removed'
            ELSE 'changed' END AS change,
       CASE WHEN s1.sample_id IS NULL OR s2.sample_id IS NULL THEN []::VARCHAR[]
            ELSE {fields} END AS fields
FROM s1 FULL OUTER JOIN s2 ON s1.sample_id = s2.sample_id
WHERE s1.sample_id IS NULL OR s2.sample_id IS NULL OR len({fields}) > 0
"""

_PER_REV = """
CREATE TEMP TABLE _per AS
WITH o AS (SELECT {cols}, valid_from FROM sample_rows WHERE valid_from > {r1} AND valid_from <= {r2}),
     c AS (SELECT {cols}, valid_to FROM sample_rows WHERE valid_to > {r1} AND valid_to <= {r2})
SELECT coalesce(o.valid_from, c.valid_to) AS rev,
       coalesce(o.sample_id, c.sample_id) AS sample_id,
       CASE WHEN c.sample_id IS NULL THEN 'added' WHEN o.sample_id IS NULL THEN 'removed'
            ELSE 'changed' END AS change,
       CASE WHEN o.sample_id IS NULL OR c.sample_id IS NULL THEN []::VARCHAR[]
            ELSE {fields} END AS fields
FROM o FULL OUTER JOIN c ON o.sample_id = c.sample_id AND o.valid_from = c.valid_to
"""


@dataclass(frozen=True)
class CatalogDiff:
    """What changed in a catalog from revision ``from_rev`` to ``to_rev``.

    ``totals`` counts samples added, removed and changed over the whole span (the net change);
    ``fields`` counts, per field, the changed samples whose field differs; ``revisions`` has one
    entry per revision in (from_rev, to_rev] with what that revision did; ``samples`` (when asked
    for) lists each sample of the net change with its changed fields.
    """

    from_rev: int
    to_rev: int
    totals: dict[str, int]
    fields: dict[str, int]
    revisions: list[dict[str, Any]]
    samples: list[dict[str, Any]] | None = None

    @property
    def changed(self) -> bool:
        """Whether the two revisions hold any row differently."""
        return any(self.totals.values())

    def to_dict(self) -> dict[str, Any]:
        d = {"from": self.from_rev, "to": self.to_rev, "totals": self.totals, "fields": self.fields,
             "revisions": self.revisions}
        if self.samples is not None:
            d["samples"] = self.samples
        return d


def _counts(con, table: str, group: str = "") -> list[tuple]:
    by = f"{group}, " if group else ""
    return con.execute(
        f"SELECT {by}count(*) FILTER (WHERE change = 'added'), count(*) FILTER (WHERE change = 'removed'), "
        f"count(*) FILTER (WHERE change = 'changed') FROM {table}"
        + (f" GROUP BY {group} ORDER BY {group}" if group else "")).fetchall()


def _field_counts(con, table: str, group: str = "") -> dict[Any, dict[str, int]]:
    by = f"{group}, " if group else ""
    rows = con.execute(f"SELECT {by}f, count(*) FROM (SELECT {by}unnest(fields) AS f FROM {table}) "
                       f"GROUP BY ALL ORDER BY ALL").fetchall()
    out: dict[Any, dict[str, int]] = {}
    for r in rows:
        key = r[0] if group else None
        out.setdefault(key, {})[r[-2]] = int(r[-1])
    return out


def diff_catalog(catalog: "Catalog", from_rev: int, to_rev: int | None = None, *,
                 samples: bool = False) -> CatalogDiff:
    """Rows added, removed and changed (with which fields) from ``from_rev`` to ``to_rev`` (the
    head when None), in total and per revision; ``samples=True`` also lists each changed sample.

    Both revisions must exist (:class:`~fpload.errors.RevisionNotFoundError`) and ``from_rev`` may
    not come after ``to_rev`` (:class:`~fpload.errors.UsageError`).

    >>> diff_catalog(cat, 1).revisions[0]                           # doctest: +SKIP
    {'rev': 2, 'op': 'update', 'message': 'withdrawn', 'added': 0, 'removed': 0, 'changed': 4,
     'fields': {'consent': 4}}
    """
    r1 = catalog.revision(from_rev).rev
    r2 = catalog.revision(to_rev).rev
    if r1 > r2:
        raise UsageError(f"--from {r1} comes after --to {r2}; give the older revision first")
    revs = {r.rev: r for r in catalog.revisions() if r1 < r.rev <= r2}
    span = f"valid_from <= {int(r2)} AND (valid_to IS NULL OR valid_to > {int(r1)})"
    with catalog._damaged(), catalog._backend.duckdb_view(span) as con:
        try:
            cols = catalog._columns_sql()
            con.execute(_NET.format(cols=cols, at1=_at(r1), at2=_at(r2), fields=_changed_fields("s1", "s2")))
            con.execute(_PER_REV.format(cols=cols, r1=r1, r2=r2, fields=_changed_fields("c", "o")))
            added, removed, changed = _counts(con, "_net")[0]
            fields = _field_counts(con, "_net").get(None, {})
            per = {r[0]: r[1:] for r in _counts(con, "_per", "rev")}
            per_fields = _field_counts(con, "_per", "rev")
            rows = None
            if samples:
                rows = [{"sample_id": s, "change": c, "fields": list(f)} for s, c, f in con.execute(
                    "SELECT sample_id, change, fields FROM _net ORDER BY sample_id").fetchall()]
        finally:
            con.execute("DROP TABLE IF EXISTS _net")
            con.execute("DROP TABLE IF EXISTS _per")
    revisions = []
    for rev in sorted(revs):
        a, r, c = per.get(rev, (0, 0, 0))
        revisions.append({"rev": rev, "op": revs[rev].op, "message": revs[rev].message, "added": int(a),
                          "removed": int(r), "changed": int(c), "fields": per_fields.get(rev, {})})
    return CatalogDiff(from_rev=r1, to_rev=r2,
                       totals={"added": int(added), "removed": int(removed), "changed": int(changed)},
                       fields=fields, revisions=revisions, samples=rows)
