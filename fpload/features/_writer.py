"""FeatureWriter: writes ``features.zarr`` chunk by chunk as a pack's rows complete.

Runs in the packer's main process. Rows arrive in global index order, each with the features a
worker computed (or none, when all of its features are reused from the parent's cache); one
chunk of rows is held in memory at a time. Reused rows are gathered from the parent's cache in
one bulk read per array and chunk. Writes are deterministic (fixed codec settings, no
timestamps, sorted attributes), so the same inputs give byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fpload import formats
from fpload.errors import ConfigError
from fpload.features._builtin import BUILTINS
from fpload.features._cache import FeatureCache, sample_ids_to_rows
from fpload.features._config import FeaturesConfig
from fpload.features._extract import Extractor, FeatureJob
from fpload.features._pyfing import DIMS as _PYFING_DIMS, PYFING_EXTRACTORS

_DIMS = {"orientation": ("sample", "cos_sin", "block_y", "block_x"),
         "frequency": ("sample", "block_y", "block_x"), "foreground": ("sample", "block_y", "block_x"),
         "quality": ("sample",), "thumbnail": ("sample", "y", "x"), **_PYFING_DIMS}


@dataclass
class _Array:
    name: str
    extractor: Extractor
    layout: str            # "block" | "sample"
    tail: tuple[int, ...]  # shape after the sample axis
    dtype: np.dtype
    fill: Any
    buf: np.ndarray | None = None
    zarr: Any = None


def _codec(cfg: FeaturesConfig):
    from zarr.codecs import BloscCodec, ZstdCodec

    if cfg.codec == "blosc":
        return BloscCodec(cname="zstd", clevel=cfg.level, shuffle="shuffle", blocksize=0)
    return ZstdCodec(level=cfg.level, checksum=False)


def _same_identity(ext: Extractor, spec: dict[str, Any], block: int, parent_block: int) -> bool:
    return (spec["extractor"] == ext.name and spec["function"] == ext.ref
            and int(spec["version"]) == ext.version
            and json.dumps(spec["params"], sort_keys=True) == json.dumps(ext.params, sort_keys=True)
            and (not ext.builtin or block == parent_block))


class FeatureWriter:
    """Write one version's feature cache; see the module docstring.

    ``sizes`` are the samples' ``(height, width)``; the block grid is the largest of them rounded
    up to whole blocks. With ``parent`` (an opened :class:`FeatureCache`), the features of samples
    it holds with the same extractor name, function, version, params (and block, for built-ins)
    are copied instead of computed.
    """

    def __init__(self, path: Path, job: FeatureJob, cfg: FeaturesConfig, sample_ids: list[str],
                 sizes: list[tuple[int, int]], chunk: int, parent: FeatureCache | None = None):
        import zarr

        self.path = path
        self.job = job
        self.cfg = cfg
        self.block = job.block
        self.n = len(sample_ids)
        self.sample_ids = sample_ids
        self._id_rows = sample_ids_to_rows(sample_ids)  # checks every id before anything is written
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        b = self.block
        self.grid = (int(-(-self.sizes[:, 0].max() // b)), int(-(-self.sizes[:, 1].max() // b)))
        self.chunk = max(1, min(chunk, self.n))
        self._codec = _codec(cfg)
        self._arrays: dict[str, _Array] = {}
        self._outputs: dict[str, list[str] | None] = {}  # extractor -> its array names (None: not yet known)
        for ext in job.extractors:
            if ext.builtin:
                bi = BUILTINS.get(ext.name) or PYFING_EXTRACTORS[ext.name]
                names = list(bi.outputs)
                for a in names:
                    out = bi.outputs[a]
                    shape = bi.output_shape(a, ext.params, self.grid)
                    self._add_array(a, ext, out.layout, shape, np.dtype(out.dtype), out.fill)
                self._outputs[ext.name] = names
            else:
                self._outputs[ext.name] = None
        self.parent = parent
        #: caches features are copied from: the parent first (when given), then those of
        #: :meth:`add_source`; each with the names of the arrays reusable per extractor
        self.sources: list[tuple[FeatureCache, dict[str, list[str]]]] = []
        #: per extractor: the source of each sample's output (index into ``sources``, -1: compute
        #: it) and its row there
        self.src = {e.name: np.full(self.n, -1, dtype=np.int32) for e in job.extractors}
        self.src_row = {e.name: np.full(self.n, -1, dtype=np.int64) for e in job.extractors}
        self.reusable: dict[str, list[str]] = {}
        if parent is not None:
            self.add_source(parent)
        self.computed = 0
        self.reused = 0
        #: samples none of whose extractors ran, not all copied from the parent (from other sources)
        self.found = 0
        self._start = 0
        self._next = 0
        self._pending_reuse: list[int] = []
        self._group = zarr.open_group(str(path), mode="w-", zarr_format=3, attributes={
            formats.FEATURES_GROUP_ATTR: {"schema_version": formats.FEATURES_SCHEMA_VERSION,
                                          "block": self.block, "grid": list(self.grid),
                                          "samples": self.n}})
        width = formats.FEATURES_SAMPLE_ID_BYTES
        self._ids = self._group.create_array(
            formats.FEATURES_SAMPLE_ID, shape=(self.n, width), chunks=(self.chunk, width), dtype=np.uint8,
            compressors=self._codec, fill_value=0, dimension_names=("sample", "id_byte"),
            attributes={"description": "sample_id of each row (samples.parquet order), its 128 bits as "
                                       f"{width} bytes: bytes(row).hex() is the sample_id"})

    # -- set-up ----------------------------------------------------------------------------
    def _add_array(self, name: str, ext: Extractor, layout: str, tail: tuple[int, ...],
                   dtype: np.dtype, fill: Any) -> None:
        if name in self._arrays or name == formats.FEATURES_SAMPLE_ID:
            raise ConfigError(f"features: array {name!r} of extractor {ext.label()} is also written by "
                              f"{self._arrays[name].extractor.label() if name in self._arrays else 'fpload'}")
        self._arrays[name] = _Array(name, ext, layout, tuple(int(x) for x in tail), dtype, fill)

    def _reusable_names(self, cache: FeatureCache) -> dict[str, list[str]]:
        """Per extractor of this job: the arrays ``cache`` holds from the same extractor identity."""
        found: dict[str, list[str]] = {}
        for ext in self.job.extractors:
            names = [a for a, s in cache.entry["arrays"].items()
                     if _same_identity(ext, s, self.block, cache.block)]
            if not names:
                continue
            known = self._outputs[ext.name]
            if known is not None and sorted(names) != sorted(known):
                continue
            found[ext.name] = names
        return found

    def missing(self) -> np.ndarray:
        """Whether each sample still has an extractor to run (no source holds its output)."""
        out = np.zeros(self.n, dtype=bool)
        for src in self.src.values():
            out |= src < 0
        return out

    def reusable_from(self, cache: FeatureCache) -> bool:
        """Whether ``cache`` holds the output of any of this job's extractors (by identity alone)."""
        return bool(self._reusable_names(cache))

    def add_source(self, cache: FeatureCache, sample_rows: dict[str, int] | None = None) -> int:
        """Copy, rather than compute, the outputs ``cache`` holds of samples no earlier source gave.

        ``sample_rows`` maps the cache's sample ids to their rows (default: its ``sample_id``
        array). Only arrays of the same extractor name, function, version, params (and block, for
        built-ins) are taken. Returns how many (sample, extractor) outputs it now provides.
        """
        reusable = self._reusable_names(cache)
        if not reusable:
            return 0
        if sample_rows is None:
            sample_rows = {sid: i for i, sid in enumerate(cache.sample_ids.tolist())}
        rows = np.fromiter((sample_rows.get(s, -1) for s in self.sample_ids), np.int64, self.n)
        k = len(self.sources)
        taken = 0
        for ext_name, names in reusable.items():
            take = (self.src[ext_name] < 0) & (rows >= 0)
            if not take.any():
                continue
            self.src[ext_name][take] = k
            self.src_row[ext_name][take] = rows[take]
            taken += int(take.sum())
            if self._outputs[ext_name] is None:  # a custom extractor: its arrays as the cache has them
                ext = next(e for e in self.job.extractors if e.name == ext_name)
                for a in names:
                    spec = cache.spec(a)
                    self._add_array(a, ext, spec.layout, spec.shape[1:], np.dtype(spec.dtype),
                                    cache.array(a).fill_value)
                self._outputs[ext_name] = names
        if taken or k == 0:
            self.sources.append((cache, reusable))
            if k == 0 and cache is self.parent:
                self.reusable = reusable
        return taken

    @property
    def parent_row(self) -> np.ndarray:
        """Row of each sample in the parent's cache where some output is copied from it, else -1."""
        out = np.full(self.n, -1, dtype=np.int64)
        if self.parent is None or not self.sources or self.sources[0][0] is not self.parent:
            return out
        for ext_name in self.src:
            sel = self.src[ext_name] == 0
            out[sel] = self.src_row[ext_name][sel]
        return out

    def compute_set(self, index: int) -> tuple[str, ...]:
        """Names of the extractors a worker must run for sample ``index`` (empty: all reused)."""
        return tuple(e.name for e in self.job.extractors if self.src[e.name][index] < 0)

    # -- rows --------------------------------------------------------------------------------
    def _buffer(self, a: _Array) -> np.ndarray:
        if a.buf is None:
            a.buf = np.full((self.chunk, *a.tail), a.fill, dtype=a.dtype)
        return a.buf

    def add(self, index: int, features: dict[str, dict[str, np.ndarray]] | None) -> None:
        """Take sample ``index``'s computed features (``{extractor: {array: value}}``)."""
        if index != self._next:
            raise RuntimeError(f"feature rows must arrive in order: got {index}, expected {self._next}")
        features = features or {}
        sid = self.sample_ids[index]
        row = index - self._start
        for ext_name, arrays in features.items():
            known = self._outputs.get(ext_name)
            if known is not None and sorted(arrays) != sorted(known):
                raise ConfigError(f"extractor {ext_name!r} returned arrays {sorted(arrays)} for sample {sid}, "
                                  f"but {sorted(known)} before: an extractor must return the same arrays")
            for name, value in arrays.items():
                if name not in self._arrays:
                    ext = next(e for e in self.job.extractors if e.name == ext_name)
                    self._add_array(name, ext, "sample", value.shape, value.dtype, 0)
                self._put(self._arrays[name], row, value, sid)
            if known is None:
                self._outputs[ext_name] = list(arrays)
        srcs = [int(src[index]) for src in self.src.values()]
        if any(s >= 0 for s in srcs):
            self._pending_reuse.append(index)
        # the manifest counts against the parent alone (so the version id does not depend on which
        # other versions the root holds): reused = every output copied from the parent
        if self.parent is not None and srcs and all(s == 0 for s in srcs) and self.sources \
                and self.sources[0][0] is self.parent:
            self.reused += 1
        else:
            self.computed += 1
            if not features:
                self.found += 1
        self._next += 1
        if self._next - self._start == self.chunk or self._next == self.n:
            self._flush()

    def _put(self, a: _Array, row: int, value: np.ndarray, sid: str) -> None:
        buf = self._buffer(a)
        if a.layout == "block":
            hb, wb = value.shape[-2:]
            if value.shape[:-2] != a.tail[:-2] or hb > a.tail[-2] or wb > a.tail[-1]:
                raise ConfigError(f"extractor {a.extractor.label()}: array {a.name!r} of sample {sid} has "
                                  f"shape {value.shape}, expected {a.tail[:-2]} + at most the grid {a.tail[-2:]}")
            buf[(row,) + (slice(None),) * (len(a.tail) - 2) + (slice(0, hb), slice(0, wb))] = value
            return
        if value.shape != a.tail:
            raise ConfigError(f"extractor {a.extractor.label()}: array {a.name!r} of sample {sid} has shape "
                              f"{value.shape}, but {a.tail} for earlier samples: an extractor must return "
                              "fixed shapes")
        buf[row] = value.astype(a.dtype, copy=False)

    def _flush(self) -> None:
        start, stop = self._start, self._next
        if self._pending_reuse:
            self._copy_reused(np.asarray(self._pending_reuse, dtype=np.int64))
        for a in self._arrays.values():
            buf = self._buffer(a)
            if a.zarr is None:
                a.zarr = self._create(a)
            a.zarr[start:stop] = buf[:stop - start]
            buf[...] = a.fill
        self._ids[start:stop] = self._id_rows[start:stop]
        self._start = stop
        self._pending_reuse = []

    def _copy_reused(self, indices: np.ndarray) -> None:
        for ext_name, src_all in self.src.items():
            src = src_all[indices]
            for k in np.unique(src[src >= 0]).tolist():
                cache, reusable = self.sources[k]
                sel = indices[src == k]
                prow = self.src_row[ext_name][sel]
                local = sel - self._start
                for name in reusable[ext_name]:
                    a = self._arrays[name]
                    buf = self._buffer(a)
                    if a.layout == "block":
                        pgh, pgw = cache.spec(name).shape[-2:]
                        gh, gw = min(pgh, a.tail[-2]), min(pgw, a.tail[-1])
                        data = cache.gather(name, prow, region=(gh, gw))
                        buf[(local,) + (slice(None),) * (len(a.tail) - 2) + (slice(0, gh), slice(0, gw))] = data
                    else:
                        buf[local] = cache.gather(name, prow)

    def _create(self, a: _Array) -> Any:
        attrs = {"block": self.block, "extractor": a.extractor.name, "function": a.extractor.ref,
                 "layout": a.layout, "params": a.extractor.params, "version": a.extractor.version}
        return self._group.create_array(
            a.name, shape=(self.n, *a.tail), chunks=(self.chunk, *a.tail), dtype=a.dtype,
            compressors=self._codec, fill_value=a.fill, attributes=json.loads(json.dumps(attrs, sort_keys=True)),
            dimension_names=_DIMS.get(a.name) if a.extractor.builtin else None)

    # -- finish ------------------------------------------------------------------------------
    def close(self) -> dict[str, Any]:
        """Check every row arrived and return the manifest's ``features`` entry."""
        if self._next != self.n:
            raise RuntimeError(f"feature cache got {self._next} of {self.n} rows")
        digest, size = formats.tree_digest(self.path)
        arrays = {}
        for name, a in self._arrays.items():
            arrays[name] = {"extractor": a.extractor.name, "function": a.extractor.ref,
                            "version": a.extractor.version, "params": a.extractor.params,
                            "layout": a.layout, "shape": [self.n, *a.tail], "dtype": str(a.dtype)}
        return {
            "file": formats.FEATURES_NAME, "schema_version": formats.FEATURES_SCHEMA_VERSION,
            "block": self.block, "grid": list(self.grid), "chunk_samples": self.chunk,
            "codec": {"name": self.cfg.codec, "level": self.cfg.level},
            "arrays": arrays, "computed": self.computed, "reused": self.reused,
            "sha256": digest, "bytes": size,
        }
