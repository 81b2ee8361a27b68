"""Erasure: remove a subject from the catalog and every dataset version, and prove it.

``erase_subject`` deletes the subject's rows at every catalog revision (a redaction marker stays),
publishes for every version holding the subject a successor without it (other samples' bytes,
indices, labels and features unchanged; only the shards that held it rewritten), tombstones the old
versions (their files holding the subject overwritten and deleted), optionally deletes the source
images, and writes a receipt into each root's hash-chained audit log. ``verify_receipt`` re-scans
everything for a trace. A crash at any point is completed by running the same call again.
A root may be an object-store URL (``s3://bucket/versions``, any fsspec URL): see :mod:`._remote`.

Example::

    from fpload.erase import erase_subject, verify_receipt
    r = erase_subject("catalog.duckdb", ["versions"], subjects=["S17"], reason="consent withdrawn (ticket 4411)")
    assert verify_receipt(f"versions/.fpload/receipts/{r['erasure_id']}.json") == []
"""

from fpload.erase._erase import erase_subject, erasures_dir
from fpload.erase._receipt import audit_log, member_ref, verify_receipt

__all__ = ["erase_subject", "verify_receipt", "audit_log", "member_ref", "erasures_dir"]
