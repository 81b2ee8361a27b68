"""Consent is read at the catalog's head, whatever revision a version is packed from.

A withdrawal (``catalog update "subject_id = 'S'" --set consent=false``) writes a new revision; an
older revision still holds ``consent = true`` for S. Packing that older revision must not undo the
withdrawal, so before the query runs, every row of the packed revision gets the consent its sample
has at the head; a sample no longer in the head counts as without consent (erased).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def with_head_consent(snapshot: pa.Table, head: pa.Table) -> pa.Table:
    """``snapshot`` with its ``consent`` column replaced by each sample's consent in ``head``.

    Samples missing from ``head``, or with a null consent there, get ``False``.

    >>> old = pa.table({"sample_id": ["a", "b", "c"], "consent": [True, True, True]})
    >>> head = pa.table({"sample_id": ["a", "b"], "consent": [True, False]})
    >>> with_head_consent(old, head)["consent"].to_pylist()
    [True, False, False]
    """
    at = pc.index_in(snapshot.column("sample_id"), value_set=head.column("sample_id"))
    consent = pc.fill_null(pc.take(head.column("consent"), at), False)
    i = snapshot.schema.get_field_index("consent")
    return snapshot.set_column(i, snapshot.schema.field(i), consent.cast(snapshot.schema.field(i).type))
