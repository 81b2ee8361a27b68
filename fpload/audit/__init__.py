"""The audit trail: append-only, hash-chained records of what happened to biometric data.

:class:`RecordLog` is the storage every governance record uses (lineage of published versions,
reads by training runs, redactions and erasure receipts): one JSON-lines file per log, each record
holding the hash of the one before, verified by :meth:`RecordLog.verify`.

Example::

    from fpload.audit import RecordLog

    log = RecordLog("versions/.fpload/audit.jsonl")
    log.append("read", {"version_id": vid, "split": "train", "run_name": "resnet-a"})
    assert log.verify() == []
"""

from fpload.audit._log import GENESIS, LogCorruptError, RecordLog, record_hash

__all__ = ["RecordLog", "LogCorruptError", "record_hash", "GENESIS"]
