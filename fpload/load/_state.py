"""The loader's resumable state: small, JSON-serialisable, checked before it is used.

A state is ``(epoch, consumed)`` plus what makes it meaningful: the dataset version, the split
and its size, and a hash of every config field that changes which samples a batch holds or its
pixels (:func:`config_hash`). Because an epoch's order is a pure function of (seed, epoch, split
size) and the consumed samples are a prefix of it (:mod:`fpload.load._order`), the state does
not depend on the world size that wrote it.

Example::

    >>> s = make_state(version_id="0123456789abcdef", split="train", split_size=100, seed=0,
    ...                shuffle="global", cfg_hash="ab" * 8, epoch=2, consumed=40, world_size=2,
    ...                rank_consumed=[20, 20])
    >>> check_state(s, version_id="0123456789abcdef", split="train", split_size=100, cfg_hash="ab" * 8)
    (2, 40)
"""

from __future__ import annotations

import hashlib
from typing import Any

from fpload import formats
from fpload.errors import LoaderStateError

STATE_FORMAT = "fpload-loader-state"
#: the state layout this fpload writes and reads
STATE_VERSION = 1
#: LoaderConfig fields that do not change a batch's samples or pixels (not hashed: a run may
#: resume on another device, with other threads, prefetch depth or integrity checks)
UNHASHED_FIELDS = ("device", "num_threads", "prefetch", "verify", "tune_host_malloc")


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the canonical JSON of ``config`` (a LoaderConfig's dict with
    the resolved image size and whether augmentation is on), without :data:`UNHASHED_FIELDS`."""
    content = {k: v for k, v in config.items() if k not in UNHASHED_FIELDS}
    return hashlib.sha256(formats.canonical_json(content)).hexdigest()[:16]


def make_state(*, version_id: str, split: str, split_size: int, seed: int, shuffle: str, cfg_hash: str,
               epoch: int, consumed: int, world_size: int, rank_consumed: list[int]) -> dict[str, Any]:
    """The state dict (see :meth:`fpload.load.Loader.state_dict`)."""
    return {"format": STATE_FORMAT, "format_version": STATE_VERSION, "version_id": version_id,
            "split": split, "split_size": split_size, "seed": seed, "shuffle": shuffle,
            "config_hash": cfg_hash, "epoch": epoch, "consumed": consumed, "world_size": world_size,
            "rank_consumed": rank_consumed}


def _int(state: dict[str, Any], key: str, lo: int, hi: int | None = None) -> int:
    v = state.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
        where = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise LoaderStateError(f"loader state: {key} {v!r} is not an integer {where}")
    return v


def check_state(state: Any, *, version_id: str, split: str, split_size: int, cfg_hash: str) -> tuple[int, int]:
    """``(epoch, consumed)`` of a state written by a loader of the same version, split and config;
    anything else raises :class:`fpload.errors.LoaderStateError` naming the first mismatch."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise LoaderStateError(f"not an fpload loader state (expected a dict with format {STATE_FORMAT!r})")
    if state.get("format_version") != STATE_VERSION:
        raise LoaderStateError(f"loader state format_version {state.get('format_version')!r} is not "
                               f"supported by this fpload (it reads {STATE_VERSION})")
    for key, want in (("version_id", version_id), ("split", split), ("split_size", split_size),
                      ("config_hash", cfg_hash)):
        if state.get(key) != want:
            what = ("the loader config (shuffle, seed, batch size, last_batch, image size, output or "
                    "augmentation differ)" if key == "config_hash" else key)
            raise LoaderStateError(f"loader state has {key} {state.get(key)!r}, this loader {want!r}: "
                                   f"it was saved with another {what} and cannot resume here")
    return _int(state, "epoch", 0), _int(state, "consumed", 0, split_size)
