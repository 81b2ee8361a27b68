"""Consent is read at the catalog's head, whatever revision a version is packed from.

A withdrawal (``catalog update "subject_id = 'S'" --set consent=false``) writes a new revision; an
older revision still holds ``consent = true`` for S. Packing that older revision must not undo the
withdrawal, so before the query runs, every row of the packed revision gets the consent its sample
has at the head; a sample no longer in the head counts as without consent (erased).

Consent may also be limited (catalog schema 2): ``consent_scope`` lists the purposes it covers
(NULL: any purpose) and ``consent_until`` its last day (NULL: no end). A pack names its
``purpose`` (``PackConfig.purpose``; None: no purpose check) and its ``consent_date`` (an explicit
input, recorded in the manifest). :func:`effective_consent` turns all of it into the one
``consent`` column the query and the pack's consent policy see: true only where the head's flag
is true, the purpose is in the scope (or either is unset) and the date is not past the end.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

#: the columns read from the head (those a catalog of schema 1 lacks count as NULL)
HEAD_COLUMNS = ("consent", "consent_scope", "consent_until")


def with_head_consent(snapshot: pa.Table, head: pa.Table) -> pa.Table:
    """``snapshot`` with its consent columns (:data:`HEAD_COLUMNS`) replaced by each sample's in ``head``.

    Samples missing from ``head``, or with a null consent there, get ``consent = False``.

    >>> old = pa.table({"sample_id": ["a", "b", "c"], "consent": [True, True, True]})
    >>> head = pa.table({"sample_id": ["a", "b"], "consent": [True, False]})
    >>> with_head_consent(old, head)["consent"].to_pylist()
    [True, False, False]
    """
    at = pc.index_in(snapshot.column("sample_id"), value_set=head.column("sample_id"))
    for name in HEAD_COLUMNS:
        if name not in snapshot.column_names or name not in head.column_names:
            continue
        values = pc.take(head.column(name), at)
        if name == "consent":
            values = pc.fill_null(values, False)
        i = snapshot.schema.get_field_index(name)
        snapshot = snapshot.set_column(i, snapshot.schema.field(i), values.cast(snapshot.schema.field(i).type))
    return snapshot


def consent_counts(table: pa.Table, purpose: str | None, on: date) -> dict[str, int]:
    """Samples refused for each reason: ``without_consent`` (flag false), ``outside_purpose``
    (scope set, ``purpose`` not in it), ``expired`` (``consent_until`` before ``on``); a sample may
    count under several."""
    flag = pc.fill_null(table.column("consent"), False)
    out = {"without_consent": int(pc.sum(pc.invert(flag)).as_py() or 0), "outside_purpose": 0, "expired": 0}
    if purpose is not None and "consent_scope" in table.column_names:
        out["outside_purpose"] = int(pc.sum(pc.invert(_covers(table, purpose))).as_py() or 0)
    if "consent_until" in table.column_names:
        out["expired"] = int(pc.sum(pc.invert(_current(table, on))).as_py() or 0)
    return out


def _covers(table: pa.Table, purpose: str) -> pa.ChunkedArray:
    """True where the scope is NULL (any purpose) or holds ``purpose``."""
    scope = table.column("consent_scope").combine_chunks()
    hit = scope.is_null().to_numpy(zero_copy_only=False).copy()
    match = pc.equal(pc.list_flatten(scope), purpose).to_numpy(zero_copy_only=False)
    hit[pc.list_parent_indices(scope).to_numpy()[match]] = True
    return pa.chunked_array([pa.array(hit, pa.bool_())])


def _current(table: pa.Table, on: date) -> pa.ChunkedArray:
    until = table.column("consent_until")
    return pc.fill_null(pc.greater_equal(until, pa.scalar(on, pa.date32())), True)


def effective_consent(table: pa.Table, purpose: str | None, on: date) -> pa.Table:
    """``table`` with ``consent`` true only where the flag is true, ``purpose`` is covered (when
    given) and ``on`` is not after ``consent_until``.

    >>> t = pa.table({"sample_id": ["a", "b", "c", "d"], "consent": [True, True, True, False],
    ...               "consent_scope": [None, ["research"], ["training"], None],
    ...               "consent_until": pa.array([date(2020, 1, 1), None, None, None], pa.date32())})
    >>> effective_consent(t, "training", date(2026, 1, 1))["consent"].to_pylist()
    [False, False, True, False]
    >>> effective_consent(t, None, date(2019, 1, 1))["consent"].to_pylist()
    [True, True, True, False]
    """
    ok = pc.fill_null(table.column("consent"), False)
    if purpose is not None and "consent_scope" in table.column_names:
        ok = pc.and_(ok, _covers(table, purpose))
    if "consent_until" in table.column_names:
        ok = pc.and_(ok, _current(table, on))
    i = table.schema.get_field_index("consent")
    return table.set_column(i, table.schema.field(i), ok.cast(table.schema.field(i).type))
