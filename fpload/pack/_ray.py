"""``pack_version(..., engine="ray")``: one Ray task per shard, the same bytes as a local pack.

The driver plans exactly as a local pack (:func:`fpload.pack._plan.plan_version`). Shard
boundaries are the local packer's: a new shard at every split change, after
``shard_max_samples`` samples, or before a sample that would take the shard past
``shard_max_mb`` (:func:`starts_shard`). Sample sizes are known only once encoded, so:

1. round one cuts at split changes and every ``shard_max_samples`` samples, and runs one task
   per such shard: it encodes its samples (computing their feature rows), writes the shard under
   a provisional name (``~part-000007.tar``) and returns its :class:`ShardInfo`, every sample's
   member sizes and feature rows. A task that meets a byte cut writes nothing (its range is not
   a shard);
2. the driver feeds the feature rows, in order, to the same :class:`FeatureWriter` as a local
   pack, computes the true boundaries from the sizes (:func:`cut_shards`), gives every
   provisional shard whose range is a true shard its true name (a shard's bytes do not depend on
   its name), and runs round two, one task per remaining true shard (only where ``shard_max_mb``
   cut: those samples are encoded twice, features are not recomputed).

Where the tasks write:

* a local ``--out``: into the temporary folder the driver made (``out/NAME/.tmp-…/shards``),
  renamed into place by the driver. On a multi-node cluster ``--out`` must then be a filesystem
  every node mounts at the same path; a node that cannot see it fails the pack with a one-line
  error;
* an object-store ``--out`` (``s3://bucket/prefix``): each task streams its shard and DALI index
  straight to the store, under the temporary prefix ``OUT/NAME/.tmp-HOST-PID-RANDOM/shards/``
  (:class:`fpload.pack._remote.StoreShards`; nothing on the driver's or the node's disk). The
  driver writes the features, ``samples.parquet`` and the manifest locally, then publishes:
  server-side copies of the shards to ``OUT/NAME/VERSION_ID/shards/`` (true names), upload of its
  own files, a size check of every object, the manifest LAST (the commit point), and removes the
  temporary prefix (``fpload versions gc`` finds one a crash left). Nothing but the store is
  shared: the tasks reach it with the credentials and endpoint of their node's environment
  (``AWS_*`` variables or ``~/.aws``, ``FSSPEC_S3_ENDPOINT_URL`` / ``FSSPEC_S3``: fsspec's
  configuration), exactly as the driver does; fpload sends no credentials with the tasks.

A task failure is retried (:data:`fpload._ray.TASK_RETRIES`), then fails the pack: the tasks still
running are cancelled, nothing is published, and the temporary folder or prefix is removed. The
driver keeps the plan, every sample's member sizes and one shard's feature rows at a time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import socket
from contextlib import closing
from pathlib import Path
from typing import Any

from fpload import formats
from fpload.errors import EngineError, UsageError
from fpload.pack._encode import encode_batch
from fpload.pack._plan import PackPlan
from fpload.pack._shard import ShardInfo, ShardWriter
from fpload.versions._store import filesystem, is_remote, join, store_errors

_BLOCK = 512
#: the provisional stem of round one's ``k``-th shard: '~' is in no split name, so no shard is called so
_PART = "~part-{:06d}"


def tar_bytes(lengths: list[int]) -> int:
    """Bytes a sample with members of these sizes takes in a shard (a header and padding per member)."""
    return sum(_BLOCK + n + (-n % _BLOCK) for n in lengths)


def starts_shard(open_split: str | None, samples: int, written: int, split: str, size: int,
                 max_samples: int | None, max_bytes: int | None) -> bool:
    """Whether the local packer closes the open shard before a sample of ``split`` and ``size``
    (its members' bytes plus 1 KiB each): the split changes, the shard holds ``max_samples``, or
    the sample would take its ``written`` bytes past ``max_bytes``."""
    if open_split is None:
        return False
    return (open_split != split or bool(max_samples and samples >= max_samples)
            or bool(max_bytes and samples and written + size > max_bytes))


def cut_shards(splits: list[str], lengths: list[list[int]] | None, max_samples: int | None,
               max_bytes: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` of every shard of samples with these splits and member sizes, as the local
    packer cuts them; without ``lengths`` the byte limit is ignored.

    >>> cut_shards(["train"] * 5 + ["val"], None, 2, None)
    [(0, 2), (2, 4), (4, 5), (5, 6)]
    """
    out: list[tuple[int, int]] = []
    start, open_split, samples, written = 0, None, 0, 0
    for i, split in enumerate(splits):
        size = sum(n + 1024 for n in lengths[i]) if lengths is not None else 0
        if starts_shard(open_split, samples, written, split, size, max_samples,
                        max_bytes if lengths is not None else None):
            out.append((start, i))
            open_split = None
        if open_split is None:
            start, open_split, samples, written = i, split, 0, 0
        samples += 1
        written += tar_bytes(lengths[i]) if lengths is not None else 0
    if open_split is not None:
        out.append((start, len(splits)))
    return out


def _encoded(rows: list[dict[str, Any]], settings: dict[str, Any], job: Any, compute: list | None):
    """Members and features of ``rows`` in order, encoded 16 at a time as the local pack's workers
    do (deep pyfing extractors batched over those 16)."""
    tasks = [(row, settings, job, compute[i]) if compute is not None else (row, settings) for i, row in enumerate(rows)]
    for start in range(0, len(tasks), 16):
        yield from encode_batch(tasks[start:start + 16])


def _open_writer(shard_dir: str, stem: str, split: str) -> ShardWriter:
    """The shard's writer: in the local temporary folder, or streaming to the store's temporary prefix."""
    if is_remote(shard_dir):
        fs, path = filesystem(shard_dir)
        return ShardWriter(f"{path}/{stem}", split, fs=fs)
    folder = Path(shard_dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: the pack's temporary folder is not visible on Ray node {socket.gethostname()}; "
                         "on a multi-node cluster a local --out must be a filesystem that every node mounts "
                         "at the same path (or pack to an object store: --out s3://bucket/prefix)")
    return ShardWriter(folder / stem, split)


def _shard_task(rows: list[dict[str, Any]], settings: dict[str, Any], job: Any, compute: list | None,
                shard_dir: str, stem: str, max_bytes: int | None) -> tuple[ShardInfo | None, list, list, int]:
    """Encode ``rows`` (and their feature rows, where ``compute`` names extractors), write them as the
    shard ``shard_dir/stem`` (a local folder or a store URL); returns its info (None when a byte cut
    fell inside), every sample's member sizes and feature rows, and its index file's size. Runs in a
    Ray worker; a store's errors are one :class:`StoreError` line naming the shard (an OSError: retried)."""
    remote = is_remote(shard_dir)

    def guard():
        return store_errors(join(shard_dir, stem + ".tar"), "writing a shard") if remote else contextlib.nullcontext()

    with guard():
        writer: ShardWriter | None = _open_writer(shard_dir, stem, rows[0]["split"])
    lengths: list[list[int]] = []
    features: list = []
    try:
        for row, (members, feats) in zip(rows, _encoded(rows, settings, job, compute)):
            lengths.append([len(d) for _, d in members])
            features.append(feats)
            if writer is None:
                continue
            size = sum(len(d) + 1024 for _, d in members)
            if starts_shard(writer.split, writer.samples, writer.bytes_written, row["split"], size, None, max_bytes):
                writer.abort()  # a byte cut inside: round two writes the true shards
                writer = None
                continue
            with guard():
                writer.add(row["sample_id"], members)
        with guard():
            info = writer.close() if writer is not None else None
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.abort()
        raise
    return info, lengths, features, writer.index_bytes if info is not None else 0


def _progress(show: bool):
    if not show:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("packing on Ray"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                    TimeRemainingColumn(), transient=True)


def write_shards(plan: PackPlan, settings: dict[str, Any], shard_dir: Path, cfg: Any, progress: bool,
                 features: Any = None, address: str | None = None,
                 store: Any = None) -> tuple[list[ShardInfo], list[str]]:
    """The Ray engine's counterpart of the local ``_write_shards``: the same shards (infos in order)
    and every sample's shard file name; ``features`` (a :class:`FeatureWriter`) gets every row in order.

    With ``store`` (a :class:`fpload.pack._remote.StoreShards`) the tasks write to its prefix on the
    store instead of ``shard_dir``, and every true shard is recorded there for publishing by copy."""
    from fpload import _ray

    target = join(store.url, formats.SHARDS_DIR) if store is not None else str(shard_dir)

    def keep(src_stem: str, stem: str, info: ShardInfo, index_bytes: int) -> None:
        """The shard written as ``src_stem`` is the version's ``stem``."""
        if store is None:
            if src_stem != stem:
                for suffix in (".tar", ".idx"):
                    (shard_dir / (src_stem + suffix)).rename(shard_dir / (stem + suffix))
            return
        for suffix, size in ((".tar", info.bytes), (".idx", index_bytes)):
            store.add(f"{formats.SHARDS_DIR}/{stem}{suffix}", f"{formats.SHARDS_DIR}/{src_stem}{suffix}", size)

    ray = _ray.connect(address)
    task = _ray.remote(_shard_task)
    window = 2 * _ray.cluster_cpus(ray)
    max_bytes = int(cfg.shard_max_mb * 1e6) if cfg.shard_max_mb else None
    rows = plan.rows
    splits = [r["split"] for r in rows]
    job = features.job if features is not None else None
    first = cut_shards(splits, None, cfg.shard_max_samples, None)
    bar = _progress(progress)
    bar_task = bar.add_task("pack", total=len(first)) if bar else None

    def round_one():
        for k, (a, b) in enumerate(first):
            compute = [features.compute_set(i) for i in range(a, b)] if features is not None else None
            yield rows[a:b], settings, job, compute, target, _PART.format(k), max_bytes

    lengths: list[list[int]] = [[] for _ in rows]
    made: dict[tuple[int, int], tuple[int, ShardInfo, int]] = {}
    if bar:
        bar.start()
    try:
        # closing(): a failure here (a feature row refused) cancels the tasks still in flight
        with closing(_ray.ordered_map(task, round_one(), window, "shard task")) as results:
            for k, (info, lens, feats, index_bytes) in enumerate(results):
                a, b = first[k]
                lengths[a:b] = lens
                if features is not None:
                    for i, f in zip(range(a, b), feats):
                        features.add(i, f)
                if info is not None:
                    made[(a, b)] = (k, info, index_bytes)
                if bar:
                    bar.advance(bar_task)
        true = cut_shards(splits, lengths, cfg.shard_max_samples, max_bytes)
        shards: list[ShardInfo | None] = []
        numbers: dict[str, int] = {}
        stems: list[str] = []
        redo: list[int] = []
        for j, (a, b) in enumerate(true):
            n = numbers.get(splits[a], 0)
            numbers[splits[a]] = n + 1
            stem = formats.shard_name(splits[a], n)
            stems.append(stem)
            hit = made.pop((a, b), None)
            if hit is None:
                shards.append(None)
                redo.append(j)
                continue
            keep(_PART.format(hit[0]), stem, hit[1], hit[2])
            shards.append(dataclasses.replace(hit[1], file=stem + ".tar", index_file=stem + ".idx"))
        for k, _info, _n in made.values():  # provisional shards that are not true shards
            for suffix in (".tar", ".idx"):  # (on a store: removed with its temporary prefix)
                if store is None:
                    (shard_dir / (_PART.format(k) + suffix)).unlink(missing_ok=True)
        if redo and bar:
            bar.update(bar_task, total=len(first) + len(redo))
        args = ((rows[true[j][0]:true[j][1]], settings, None, None, target, stems[j], None) for j in redo)
        with closing(_ray.ordered_map(task, args, window, "shard task (round two)")) as results:
            for j, (info, lens, _, index_bytes) in zip(redo, results):
                a, b = true[j]
                if info is None or lens != lengths[a:b]:
                    raise EngineError(f"shard {stems[j]}: samples {a}-{b - 1} encoded to other sizes on the "
                                      "second pass (a nondeterministic encoder?); nothing was published")
                keep(stems[j], stems[j], info, index_bytes)
                shards[j] = info
                if bar:
                    bar.advance(bar_task)
    finally:
        if bar:
            bar.stop()
    shard_of = [""] * len(rows)
    for (a, b), stem in zip(true, stems):
        shard_of[a:b] = [stem + ".tar"] * (b - a)
    return [s for s in shards if s is not None], shard_of
