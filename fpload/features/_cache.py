"""Read a version's feature cache (``features.zarr``), validated against its manifest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fpload import formats
from fpload.errors import DataError, IntegrityError, UsageError, VersionError
from fpload.versions import Version, open_version

_HEX_ID = re.compile(rf"[0-9a-f]{{{formats.SAMPLE_KEY_HEX}}}")


def sample_ids_to_rows(ids: Sequence[str]) -> np.ndarray:
    """The ``sample_id`` array of a schema-2 cache: ``uint8 [N, 16]``, row i = the bytes of ids[i].

    Each id must be a sample_id as :func:`fpload.formats.sample_key` makes it (32 lower-case hex
    digits), else :class:`DataError` names it.

    Example::

        >>> sample_ids_to_rows(["00ff" * 8])[0, :4].tolist()
        [0, 255, 0, 255]
    """
    for i, sid in enumerate(ids):
        if not isinstance(sid, str) or not _HEX_ID.fullmatch(sid):
            raise DataError(f"sample id {sid!r} (row {i}) is not {formats.SAMPLE_KEY_HEX} lower-case hex "
                            "digits; only ids made by fpload.formats.sample_key can key a feature cache")
    raw = bytes.fromhex("".join(ids))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(ids), formats.FEATURES_SAMPLE_ID_BYTES).copy()


def rows_to_sample_ids(rows: np.ndarray) -> np.ndarray:
    """Inverse of :func:`sample_ids_to_rows`: the hex sample ids (str) of ``uint8 [N, 16]`` rows.

    One row alone is ``bytes(row).hex()``, which is all a reader without fpload needs.

    Example::

        >>> rows_to_sample_ids(np.full((1, 16), 255, np.uint8)).tolist() == ["f" * 32]
        True
    """
    rows = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, formats.FEATURES_SAMPLE_ID_BYTES)
    hexed = rows.tobytes().hex().encode("ascii")
    return np.frombuffer(hexed, dtype=f"S{formats.SAMPLE_KEY_HEX}").astype(str)


@dataclass(frozen=True)
class FeatureSpec:
    """One cached array: the extractor that wrote it and how it is stored.

    ``layout`` is ``block`` (the last two axes are the version's block grid) or ``sample`` (one
    fixed-shape value per sample). ``shape`` includes the sample axis.
    """

    name: str
    extractor: str
    version: int
    params: dict[str, Any]
    function: str
    layout: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    block: int

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["shape"], d["chunks"] = list(self.shape), list(self.chunks)
        return d


class FeatureCache:
    """The feature cache of one published version: arrays whose row i belongs to sample i.

    Open it with :func:`open_features`, which checks it against the manifest.

    Example::

        cache = open_features("versions/thumbs")
        cache.names                      # ['orientation', 'frequency', 'foreground', 'quality', 'thumbnail']
        quality = cache.load("quality")  # float32 [N], in global sample order
        cache.spec("orientation").version
    """

    def __init__(self, version: Version, entry: dict[str, Any], group: Any):
        self.version = version
        self.entry = entry
        self._group = group

    @property
    def path(self) -> Path:
        return self.version.path / self.entry["file"]

    @property
    def names(self) -> list[str]:
        """The feature arrays, in the order the extractors ran (``sample_id`` not included)."""
        return list(self.entry["arrays"])

    @property
    def samples(self) -> int:
        return formats.index_space(self.version.manifest)  # rows: global indices (holes after an erasure)

    @property
    def block(self) -> int:
        return int(self.entry["block"])

    @property
    def grid(self) -> tuple[int, int]:
        """``(GH, GW)``: the block grid of the block arrays."""
        gh, gw = self.entry["grid"]
        return int(gh), int(gw)

    @property
    def computed(self) -> int:
        return int(self.entry.get("computed", 0))

    @property
    def reused(self) -> int:
        return int(self.entry.get("reused", 0))

    def __contains__(self, name: str) -> bool:
        return name in self.entry["arrays"]

    def _require(self, name: str) -> None:
        if name not in self.entry["arrays"]:
            raise UsageError(f"version {self.version.name}/{self.version.id} has no feature {name!r} "
                             f"(features: {', '.join(self.names) or 'none'})")

    def spec(self, name: str) -> FeatureSpec:
        """The extractor, version, params, shape, dtype and chunks of one array."""
        self._require(name)
        a = self.entry["arrays"][name]
        arr = self._group[name]
        return FeatureSpec(name=name, extractor=a["extractor"], version=int(a["version"]),
                           params=dict(a["params"]), function=a["function"], layout=a["layout"],
                           shape=tuple(arr.shape), dtype=str(arr.dtype), chunks=tuple(arr.chunks),
                           block=self.block)

    def array(self, name: str) -> Any:
        """The zarr array itself (lazy; index it to read)."""
        if name != formats.FEATURES_SAMPLE_ID:
            self._require(name)
        return self._group[name]

    def load(self, name: str) -> np.ndarray:
        """The whole array in host memory, row i = sample i."""
        return self.array(name)[...]

    def gather(self, name: str, rows: np.ndarray, region: tuple[int, int] | None = None) -> np.ndarray:
        """Rows ``rows`` of an array in one bulk read (``region`` limits block arrays to the top-left
        ``(gh, gw)`` blocks)."""
        rows = np.asarray(rows, dtype=np.int64)
        arr = self.array(name)
        if rows.size == 0:
            tail = arr.shape[1:]
            if region is not None:
                tail = (*tail[:-2], *region)
            return np.empty((0, *tail), dtype=arr.dtype)
        order = np.argsort(rows, kind="stable")
        sel: tuple[Any, ...] = (rows[order],)
        if region is not None:
            sel += (slice(None),) * (arr.ndim - 3) + (slice(0, region[0]), slice(0, region[1]))
        data = arr.oindex[sel]
        out = np.empty_like(data)
        out[order] = data
        return out

    @property
    def schema_version(self) -> int:
        """The cache's layout version (2: sample ids as ``uint8 [N, 16]``; 1: as strings)."""
        return int(self.entry["schema_version"])

    @cached_property
    def sample_ids(self) -> np.ndarray:
        """The cache's sample ids (hex str, as in samples.parquet), row i = sample i; read from
        either schema's ``sample_id`` array."""
        data = self._group[formats.FEATURES_SAMPLE_ID][...]
        if self.schema_version == 1:
            return np.array(data.tolist(), dtype=str)
        return rows_to_sample_ids(data)

    def verify(self) -> list[str]:
        """Recompute the cache's sha256 against the manifest; the problems found (empty: intact)."""
        digest, size = formats.tree_digest(self.path)
        problems = []
        if size != self.entry["bytes"]:
            problems.append(f"{self.entry['file']}: {size} bytes, manifest says {self.entry['bytes']} (altered)")
        if digest != self.entry["sha256"]:
            problems.append(f"{self.entry['file']}: sha256 differs from the manifest (altered)")
        return problems

    def summary(self) -> dict[str, Any]:
        """What ``fpload features show`` prints."""
        return {
            "version": f"{self.version.name}/{self.version.id}", "path": str(self.path),
            "schema_version": self.schema_version, "samples": self.samples, "block": self.block,
            "grid": list(self.grid),
            "codec": self.entry["codec"], "computed": self.computed, "reused": self.reused,
            "bytes": self.entry["bytes"],
            "arrays": {n: self.spec(n).to_dict() for n in self.names},
        }

    def __repr__(self) -> str:
        return f"FeatureCache({self.version.name}/{self.version.id}, {', '.join(self.names)})"


def _check_id_layout(arr: Any, schema: int, label: str) -> None:
    is_str = np.dtype(arr.dtype).kind in "UTO"
    if schema == 1:
        ok, want = arr.ndim == 1 and is_str, "string [N]"
    else:
        width = formats.FEATURES_SAMPLE_ID_BYTES
        ok, want = arr.ndim == 2 and arr.shape[1] == width and arr.dtype == np.uint8, f"uint8 [N, {width}]"
    if not ok:
        raise IntegrityError(f"{label} is {'string' if is_str else arr.dtype} {list(arr.shape)}, "
                             f"feature-cache schema {schema} "
                             f"stores it as {want}")


def open_features(version: str | Path | Version, *, expect: Mapping[str, int] | None = None,
                  verify: bool = False) -> FeatureCache:
    """Open and check a version's feature cache.

    Checks the schema version, that every array the manifest lists is there with the version's
    sample count, shape and dtype, that each array's attributes name the extractor and version
    the manifest records, and that the ``sample_id`` array equals samples.parquet's order.
    ``expect`` maps array names to the extractor versions the caller needs; ``verify`` also
    recomputes the sha256 of every file. Errors (:class:`VersionError`, :class:`IntegrityError`)
    name the array and the versions found and expected.

    Example::

        cache = open_features("versions/thumbs", expect={"quality": 1})
        q = cache.load("quality")
    """
    import zarr

    v = open_version(version)
    stage = getattr(v, "stage", None)  # a remote version: fetch (and check) features.zarr first
    if stage is not None and v.manifest.get("features"):
        stage(features=True)
    where = f"feature cache of version {v.name}/{v.id}"
    entry = v.manifest.get("features")
    if not entry:
        raise VersionError(f"version {v.name}/{v.id} has no feature cache (it was packed with "
                           "features.enabled: false, or by an fpload without feature caches)")
    found = entry.get("schema_version")
    readable = ", ".join(str(x) for x in formats.FEATURES_READ_SCHEMA_VERSIONS)
    if found not in formats.FEATURES_READ_SCHEMA_VERSIONS:
        raise VersionError(f"{where}: schema_version {found!r} is not supported by this fpload "
                           f"(it reads {readable})")
    path = v.path / entry["file"]
    if not (path / "zarr.json").is_file():
        raise IntegrityError(f"{where}: {path} is missing (or is not a Zarr v3 group)")
    try:
        group = zarr.open_group(str(path), mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        members = set(group.array_keys())
    except Exception as err:  # zarr raises several types for unreadable metadata
        raise IntegrityError(f"{where}: cannot open {path} as a Zarr v3 group ({err})") from None
    schema = attrs.get(formats.FEATURES_GROUP_ATTR, {}).get("schema_version")
    if schema != found:
        raise VersionError(f"{where}: the group's schema_version is {schema!r}, "
                           f"the manifest says {found!r}")
    n = formats.index_space(v.manifest)
    expected = {formats.FEATURES_SAMPLE_ID: None, **entry["arrays"]}
    for name, spec in expected.items():
        label = "the sample_id array" if spec is None else \
            f"array {name!r} (extractor {spec['extractor']} v{spec['version']})"
        if name not in members:
            raise IntegrityError(f"{where}: {label} is missing from {entry['file']}")
        arr = group[name]
        if arr.shape[0] != n:
            raise IntegrityError(f"{where}: {label} has {arr.shape[0]} rows, the version has {n} samples")
        if spec is None:
            _check_id_layout(arr, found, f"{where}: {label}")
            continue
        if list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
            raise IntegrityError(f"{where}: {label} is {str(arr.dtype)} {list(arr.shape)}, the manifest "
                                 f"says {spec['dtype']} {spec['shape']}")
        a = dict(arr.attrs)
        if (a.get("extractor"), a.get("version")) != (spec["extractor"], spec["version"]):
            raise VersionError(f"{where}: array {name!r} was written by extractor {a.get('extractor')} "
                               f"v{a.get('version')}, the manifest expects {spec['extractor']} v{spec['version']}")
        if json.dumps(a.get("params"), sort_keys=True) != json.dumps(spec["params"], sort_keys=True):
            raise VersionError(f"{where}: array {name!r} (extractor {spec['extractor']} v{spec['version']}) "
                               f"has params {a.get('params')}, the manifest expects {spec['params']}")
    for name, want in (expect or {}).items():
        if name not in entry["arrays"]:
            raise VersionError(f"{where}: no array {name!r} (expected from an extractor v{want}; "
                               f"arrays: {', '.join(entry['arrays'])})")
        got = entry["arrays"][name]
        if int(got["version"]) != int(want):
            raise VersionError(f"{where}: array {name!r} is from extractor {got['extractor']} "
                               f"v{got['version']}, v{want} is expected")
    cache = FeatureCache(v, entry, group)
    ids = cache.sample_ids
    want_ids = v.samples.column("sample_id").to_numpy(zero_copy_only=False).astype(str)
    if len(want_ids) != len(ids):  # an erasure's successor: its samples sit at their indices
        ids = ids[v.samples.column("index").to_numpy()]
    if not np.array_equal(ids, want_ids):
        bad = int(np.flatnonzero(ids != want_ids)[0])
        raise IntegrityError(f"{where}: sample_id row {bad} is {ids[bad]!r}, samples.parquet has "
                             f"{want_ids[bad]!r} (the cache is not aligned with the version)")
    if verify:
        problems = cache.verify()
        if problems:
            raise IntegrityError(f"{where}: " + "; ".join(problems))
    return cache
