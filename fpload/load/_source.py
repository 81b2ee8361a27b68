"""Where each sample of a split lives: its image (and ``shape``) member's shard, offset and size,
read from the shards' DALI indexes, plus its label and global index from ``samples.parquet``.

The loader feeds DALI by position through ``fn.external_source``: :meth:`SplitSource.read` maps
the shards (at most :data:`MAX_OPEN_SHARDS` at once) and hands DALI views of the members' bytes,
which it copies into its own buffers.

Example::

    src = SplitSource(open_version("versions/thumbs"), "train")
    images, shapes = src.read(np.array([3, 0, 7]))   # uint8 member bytes; int32 N × [H, W, C] or None

A remote version (:class:`fpload.versions._remote.RemoteVersion`) fetches its shards into the
node-local shard cache ahead of the reader; :meth:`SplitSource.read` waits for the shard it needs.
"""

from __future__ import annotations

import mmap
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np

from fpload import formats
from fpload.errors import IntegrityError

#: shard files kept mapped at once (each holds a file descriptor)
MAX_OPEN_SHARDS = 128


class SplitSource:
    """The members of one split of a version, by split position (``0..n-1``, shard order)."""

    def __init__(self, version, split: str):
        self.shards: list[Path] = version.shard_paths(split)
        self.index_files: list[Path] = version.index_paths(split)
        self.raw = version.encoding in ("raw", "raw-lz4")
        shard, img_off, img_size, shape_off = [], [], [], []
        for k, path in enumerate(self.index_files):
            offs, sizes, shapes = _parse_index(path, self.raw)
            shard.append(np.full(len(offs), k, dtype=np.int32))
            img_off.append(offs)
            img_size.append(sizes)
            shape_off.append(shapes)
        cat = (lambda xs, t: np.concatenate(xs) if xs else np.zeros(0, t))
        self.shard = cat(shard, np.int32)
        self.offset = cat(img_off, np.int64)
        self.size = cat(img_size, np.int64)
        self.shape_offset = cat(shape_off, np.int64)
        table = version.samples
        split_col = table.column("split").to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(split_col == split)
        #: global sample index (row of samples.parquet) of each split position
        self.index = table.column("index").to_numpy()[rows].astype(np.int64)
        #: label of each split position
        self.label = table.column("label").to_numpy()[rows].astype(np.int64)
        if len(self.index) != len(self.offset):
            raise IntegrityError(f"version {version.name}/{version.id}: the indexes of split {split!r} "
                                 f"list {len(self.offset)} samples, samples.parquet {len(self.index)}")
        self._maps: OrderedDict[int, mmap.mmap] = OrderedDict()
        # a remote version's shards are fetched into the node-local cache ahead of the reader
        prefetch = getattr(version, "prefetch", None)
        self._fetcher = prefetch(split) if prefetch is not None else None
        if self._fetcher is not None:
            weakref.finalize(self, self._fetcher.close)

    def __len__(self) -> int:
        return len(self.index)

    def _map(self, k: int) -> mmap.mmap:
        m = self._maps.get(k)
        if m is not None:
            self._maps.move_to_end(k)
            return m
        path = self.shards[k] if self._fetcher is None else self._fetcher.ready(k)
        with open(path, "rb") as fh:
            m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps[k] = m
        if len(self._maps) > MAX_OPEN_SHARDS:
            _, old = self._maps.popitem(last=False)
            try:
                old.close()
            except BufferError:  # a view is still alive: the mapping goes with it
                pass
        return m

    def read(self, positions: np.ndarray) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
        """The image members of the samples at ``positions`` (one ``N × size`` uint8 array when
        their sizes are equal, which DALI takes in one copy; else a list of uint8 arrays) and, for
        raw encodings, their ``shape`` members (``N × 3`` int32)."""
        images, shapes = [], [] if self.raw else None
        for p in positions.tolist():
            k = int(self.shard[p])
            m = self._map(k)
            off, size = int(self.offset[p]), int(self.size[p])
            if off + size > len(m):
                raise IntegrityError(f"{self.shards[k].name}: member at {off} ({size} bytes) runs past "
                                     f"the end of the shard ({len(m)} bytes)")
            images.append(np.frombuffer(m, dtype=np.uint8, count=size, offset=off))
            if shapes is not None:
                shapes.append(np.frombuffer(m, dtype="<i4", count=3, offset=int(self.shape_offset[p])))
        sizes = self.size[positions]
        dense = np.stack(images) if len(images) and (sizes == sizes[0]).all() else images
        return dense, (np.stack(shapes) if shapes is not None else None)

    def describe(self, position: int) -> str:
        """``shards/<file>:<offset>:<member name>`` of the image member at ``position`` (for errors)."""
        k = int(self.shard[position])
        first = int(np.searchsorted(self.shard, k))
        line = self.index_files[k].read_text().splitlines()[1 + position - first].split()
        name = line[3] if len(line) >= 4 else "?"
        return f"{formats.SHARDS_DIR}/{self.shards[k].name}:{int(self.offset[position])}:{name}"

    def close(self) -> None:
        for m in self._maps.values():
            try:
                m.close()
            except BufferError:  # pragma: no cover - a view is still alive
                pass
        self._maps.clear()


def _parse_index(path: Path, raw: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image offsets, sizes and ``shape`` offsets (-1 when absent) of one DALI index (v1.2)."""
    lines = path.read_text().splitlines()
    head = lines[0].split() if lines else []
    if len(head) != 2 or head[0] != formats.DALI_INDEX_VERSION or not head[1].isdigit() \
            or int(head[1]) != len(lines) - 1:
        raise IntegrityError(f"{path.name}: not a DALI index {formats.DALI_INDEX_VERSION} "
                             f"with as many sample lines as its header says")
    n = len(lines) - 1
    offs, sizes, shapes = np.empty(n, np.int64), np.empty(n, np.int64), np.full(n, -1, np.int64)
    for i, line in enumerate(lines[1:]):
        tok = line.split()
        found = len(tok) >= 4 and len(tok) % 4 == 0
        try:
            if found:  # the image is the first member (formats.MEMBER_ORDER)
                offs[i], sizes[i] = int(tok[1]), int(tok[2])
                for j in range(4, len(tok), 4):
                    if tok[j] == "shape":
                        shapes[i] = int(tok[j + 1])
        except ValueError:
            found = False
        if not found or (raw and shapes[i] < 0):
            raise IntegrityError(f"{path.name}: sample line {i + 1} has no image"
                                 + (" or shape" if raw else "") + " member")
    return offs, sizes, shapes
