"""Reads are recorded: every Loader run appends one ``read`` record to its version root's audit log.

The record is written when the loader starts its first epoch (the first ``for`` over it), so a
loader that is built but never iterated has read nothing and records nothing. It holds the run id
(one per process: the loaders of one training process share it), the scheduler's job id when one
is set (``TORCHELASTIC_RUN_ID``, ``SLURM_JOB_ID``: shared by the ranks of one job), the version
id and name, the split and its size, rank and world size, the epoch the loader starts at, the pid,
and the ``run_name`` and ``tags`` the training job passes; the log adds time, host and user. The
record holds no subject or sample, and no image data: which subjects a run saw is the join of
these records with the lineage index (:func:`fpload.audit.audit_subject`).

``LoaderConfig(record_reads=False)`` switches the read record off for one loader; the choice is
itself recorded: one ``read`` record with ``recorded: false`` that keeps only the version, split
and run id (no run name, tags, ranks or epoch).

A version root whose log cannot be written (a read-only mount) does not stop training: the
loader warns once per root and process (:class:`AuditWarning`, one line) and trains unrecorded.
Nothing is written elsewhere: give the training users write access to ``ROOT/.fpload/`` (the rest
of the root may stay read-only) to have their reads recorded. A version folder that is not
``ROOT/NAME/<version_id>`` (a copy under another name) belongs to no root: the loader warns the
same way, unless ``record_reads=False``.

Example::

    loader = Loader("versions/thumbs", split="train", run_name="resnet-a", tags={"git": "4f2c1e0"})
    for images, labels, index in loader:   # the read record is appended here, once
        ...
    loader.read_record["payload"]["run_name"]   # 'resnet-a'
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

from fpload.audit._lineage import audit_log, find_versions, subject_ref, sync_lineage
from fpload.audit._log import LogCorruptError
from fpload.errors import UsageError

#: the run id of this process: every loader of one training process records the same
RUN_ID = uuid.uuid4().hex
_MAX_TEXT = 200
_MAX_TAGS = 32
_warned: set[str] = set()
_warned_lock = threading.Lock()


class AuditWarning(UserWarning):
    """A read could not be recorded in the version root's audit log (training goes on)."""


def _job_id() -> str | None:
    """The scheduler's job id, shared by the ranks of one job (torchrun, Slurm), if set."""
    for var in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        value = os.environ.get(var, "").strip()
        if value and value.lower() != "none":
            return f"{var}={value[:_MAX_TEXT]}"
    return None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT or not value.isprintable():
        raise UsageError(f"{what} must be a printable string of 1 to {_MAX_TEXT} characters, got {value!r}")
    return value


def parse_tags(tags: Any) -> dict[str, str]:
    """A run's tags as ``{name: value}``: a mapping of strings, or a list of names (value ``""``).

    >>> parse_tags({"git": "4f2c1e0"}), parse_tags(["baseline"])
    ({'git': '4f2c1e0'}, {'baseline': ''})
    """
    if tags is None:
        return {}
    if isinstance(tags, (list, tuple)):
        tags = {t: "" for t in tags}
    if not isinstance(tags, dict):
        raise UsageError(f"tags must be a mapping of names to strings or a list of names, got {tags!r}")
    if len(tags) > _MAX_TAGS:
        raise UsageError(f"at most {_MAX_TAGS} tags, got {len(tags)}")
    out = {}
    for key, value in tags.items():
        _text(key, "a tag name")
        if not isinstance(value, str) or len(value) > _MAX_TEXT or not value.isprintable():
            raise UsageError(f"tag {key!r}: value must be a printable string of at most {_MAX_TEXT} "
                             f"characters, got {value!r}")
        out[key] = value
    return dict(sorted(out.items()))


class ReadRecorder:
    """Appends the one ``read`` record of a Loader (see the module docstring).

    The Loader builds it in its constructor (which checks ``run_name`` and ``tags``) and calls
    :meth:`started` at the start of every epoch; only the first call writes.

    Example::

        rec = ReadRecorder(version, "train", rank=0, world_size=1, run_name="resnet-a")
        rec.started(epoch=0)      # appends; later calls do nothing
    """

    def __init__(self, version: Any, split: str, *, rank: int, world_size: int, enabled: bool = True,
                 run_name: str | None = None, tags: Any = None, samples: int | None = None):
        self.version = version
        folder = Path(version.path)
        #: the version root whose log records the read: ROOT of ROOT/NAME/<version_id>; None for a
        #: version folder not named by its id (a renamed copy, a fixture), which is in no root
        self.root = folder.parent.parent if folder.name == version.id else None
        self.split, self.rank, self.world_size, self.samples = split, rank, world_size, samples
        self.enabled = bool(enabled)
        self.run_name = None if run_name is None else _text(run_name, "run_name")
        self.tags = parse_tags(tags)
        #: the record appended (None until the first epoch starts, or if it could not be written)
        self.record: dict[str, Any] | None = None
        #: why no record could be written (None when it was, or before the first epoch)
        self.error: str | None = None
        self._done = False

    def payload(self, epoch: int) -> dict[str, Any]:
        """The record's payload for a loader starting at ``epoch``."""
        base = {"version_id": self.version.id, "name": self.version.name, "split": self.split,
                "run_id": RUN_ID, "job": _job_id(), "recorded": self.enabled}
        if not self.enabled:
            return {**base, "reason": "record_reads=False"}
        return {**base, "run_name": self.run_name, "tags": self.tags, "rank": self.rank,
                "world_size": self.world_size, "epoch": int(epoch), "split_samples": self.samples,
                "pid": os.getpid()}

    def started(self, epoch: int = 0) -> dict[str, Any] | None:
        """Record the read (the first call only); returns the record, None if not written."""
        if self._done:
            return self.record
        self._done = True
        if self.root is None:
            if self.enabled:  # switched off outside a root: there is no log to say so in
                self.error = f"its folder is not named by its id {self.version.id} (ROOT/NAME/ID)"
                self._warn()
            return None
        try:
            self.record = audit_log(self.root).append("read", self.payload(epoch))
        except OSError as err:
            self.error = f"{err.strerror or type(err).__name__}: {err.filename or self.root}"
            self._warn()
        except LogCorruptError as err:  # `fpload audit verify` names the damage; training goes on
            self.error = str(err)
            self._warn()
        return self.record

    def _warn(self) -> None:
        key = str((self.root or Path(self.version.path)).resolve())
        with _warned_lock:
            if key in _warned:
                return
            _warned.add(key)
        if self.root is None:
            msg = (f"fpload: reads of {self.version.path} are not recorded: {self.error}; load it from "
                   "the root it was packed into, or pass record_reads=False")
        else:
            msg = (f"fpload: reads of {self.root} are not recorded: its audit log cannot be written "
                   f"({self.error}); give this user write access to {self.root / '.fpload'}")
        warnings.warn(msg, AuditWarning, stacklevel=4)


def read_records(root: str | Path, version_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """The ``read`` records of a root's audit log (of the given versions), oldest first."""
    return [r for r in audit_log(root).records("read")
            if version_ids is None or (r.get("payload") or {}).get("version_id") in version_ids]


def _read_row(rec: dict[str, Any]) -> dict[str, Any]:
    p = rec.get("payload") or {}
    row = {"seq": rec.get("seq"), "time": rec.get("time"), "host": rec.get("host"), "user": rec.get("user"),
           "version_id": p.get("version_id"), "name": p.get("name"), "split": p.get("split"),
           "run_id": p.get("run_id"), "job": p.get("job")}
    if p.get("recorded", True):
        row.update({k: p.get(k) for k in ("run_name", "tags", "rank", "world_size", "epoch")})
    return row


def audit_subject(root: str | Path, *, subject: str | None = None, sample: str | None = None,
                  sample_ids: list[str] | None = None) -> dict[str, Any]:
    """Which versions of ``root`` hold the subject (or sample(s)), and which training runs read them.

    Joins the lineage index (:func:`find_versions`) with the ``read`` records: a run saw the subject
    when it read a split of a version that holds the subject in that split. Returns
    ``{"subject_ref", "versions", "runs", "unrecorded"}``: ``runs`` groups the read records by job
    (or run id) with their run names, tags, hosts, users, times, ranks and epochs; ``unrecorded``
    lists the loaders that had ``record_reads=False`` on such a split. Versions without lineage
    are indexed first when the root is writable.

    Example::

        answer = audit_subject("versions", subject="S042")
        [r["run_names"] for r in answer["runs"]]
    """
    try:
        sync_lineage(root)
    except OSError:
        pass  # read-only: find_versions searches unindexed versions from their samples.parquet
    versions = find_versions(root, subject=subject, sample=sample, sample_ids=sample_ids)
    holding = {v["version_id"]: set(v["splits"]) for v in versions}
    runs: dict[str, dict[str, Any]] = {}
    unrecorded = []
    for rec in read_records(root, set(holding)):
        row = _read_row(rec)
        if row["split"] not in holding.get(row["version_id"], ()):
            continue
        if not (rec.get("payload") or {}).get("recorded", True):
            unrecorded.append(row)
            continue
        key = row["job"] or row["run_id"]
        run = runs.setdefault(key, {"run": key, "job": row["job"], "run_ids": [], "run_names": [], "tags": {},
                                    "hosts": [], "users": [], "first": row["time"], "last": row["time"],
                                    "versions": [], "reads": []})
        for field, value in (("run_ids", row["run_id"]), ("run_names", row["run_name"]), ("hosts", row["host"]),
                             ("users", row["user"]), ("versions", row["version_id"])):
            if value is not None and value not in run[field]:
                run[field].append(value)
        run["tags"].update(row.get("tags") or {})
        run["last"] = row["time"]
        run["reads"].append(row)
    return {"subject_ref": subject_ref(subject) if subject is not None else None,
            "versions": versions, "runs": list(runs.values()), "unrecorded": unrecorded}
