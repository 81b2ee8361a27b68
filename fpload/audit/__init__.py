"""The audit trail: append-only, hash-chained records of what happened to biometric data.

:class:`RecordLog` is the storage every governance record uses (lineage of published versions,
reads by training runs, redactions and erasure receipts): one JSON-lines file per log, each record
holding the hash of the one before, verified by :meth:`RecordLog.verify`. A version root's log is
``audit_log(root)`` (``ROOT/.fpload/audit.jsonl``); its lineage index
(``ROOT/.fpload/lineage/<version_id>.parquet``) answers :func:`find_versions`, and
:func:`audit_subject` joins it with the loaders' ``read`` records.

Example::

    from fpload.audit import RecordLog, audit_log, audit_subject, find_versions

    log = RecordLog("versions/.fpload/audit.jsonl")
    log.append("read", {"version_id": vid, "split": "train", "run_name": "resnet-a"})
    assert log.verify() == []
    find_versions("versions", subject="S042")          # versions holding S042, live or erased
    audit_subject("versions", subject="S042")["runs"]  # training runs that read them
"""

from fpload.audit._lineage import (
    audit_log,
    find_versions,
    lineage_path,
    lineage_problems,
    record_publish,
    subject_ref,
    sync_lineage,
)
from fpload.audit._log import GENESIS, LogCorruptError, RecordLog, record_hash
from fpload.audit._reads import AuditWarning, ReadRecorder, audit_subject, read_records

__all__ = ["RecordLog", "LogCorruptError", "record_hash", "GENESIS", "audit_log", "find_versions",
           "lineage_path", "lineage_problems", "record_publish", "subject_ref", "sync_lineage",
           "AuditWarning", "ReadRecorder", "audit_subject", "read_records"]
