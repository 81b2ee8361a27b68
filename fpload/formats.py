"""On-disk contracts of a dataset version, with their schema versions.

Everything another stage reads from disk is defined here, so that the loader does not import the
packer: the sample key, the tar member order, the DALI index lines, the manifest, the version
folder layout. Change any of these only with a bump of :data:`MANIFEST_SCHEMA_VERSION`.

Layout of one version::

    ROOT/NAME/VERSION_ID/
        manifest.json          written last: its presence is what makes the version published
        samples.parquet        one row per sample, ordered by global index
        shards/SPLIT-000000.tar
        shards/SPLIT-000000.idx
        features.zarr/         the feature cache (Zarr v3 group), when the pack config enables it

The feature cache (schema :data:`FEATURES_SCHEMA_VERSION`, recorded in the manifest's
``features`` entry and the group's ``fpload_features`` attribute) holds one array per feature,
first axis = global sample index, chunked along it by :func:`features_chunk_samples`, plus the
:data:`FEATURES_SAMPLE_ID` array (row i holds the sample_id of samples.parquet row i, as the
:data:`FEATURES_SAMPLE_ID_BYTES` bytes of its 128 bits: ``bytes(row).hex()`` is the sample_id;
schema 1 stored it as variable-length strings, which readers still accept). Each array's
attributes name its ``extractor``, ``version``, ``params`` and ``block``; block arrays are
``[N, ..., GH, GW]`` over the version's grid (its largest image rounded up to whole blocks),
each sample's blocks top-left aligned and the rest background.

Example::

    >>> from fpload.formats import sample_key, encode_int_member, decode_int_members
    >>> sample_key(b"fingerprint bytes")[:8]
    'f332dea4'
    >>> encode_int_member(42)
    b'000000000042'
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fpload.errors import VersionError

#: version of the manifest / shard / index contract; readers refuse others
MANIFEST_SCHEMA_VERSION = 1
#: hex characters of the sha256 kept as sample_id (128 bits: collision-free at 10^9 samples)
SAMPLE_KEY_HEX = 32
#: hex characters of the sha256 kept as version_id
VERSION_ID_HEX = 16
#: width of the zero-padded ASCII integers in the ``cls`` and ``idx`` members
INT_MEMBER_WIDTH = 12

MANIFEST_NAME = "manifest.json"
SAMPLES_NAME = "samples.parquet"
SHARDS_DIR = "shards"
FEATURES_NAME = "features.zarr"
#: what replaces the manifest of a version tombstoned by an erasure (see :mod:`fpload.erase`)
TOMBSTONE_NAME = "tombstone.json"

#: version of the feature-cache layout (features.zarr and the manifest's ``features`` entry) written
#: by this fpload; 2 stores the sample ids as ``uint8 [N, 16]`` (only Zarr v3 core data types)
FEATURES_SCHEMA_VERSION = 2
#: feature-cache schema versions this fpload reads (1: sample ids as ``string``/``vlen-utf8``)
FEATURES_READ_SCHEMA_VERSIONS = (1, 2)
#: the feature-cache array of sample ids, the join key: ``uint8 [N, FEATURES_SAMPLE_ID_BYTES]``,
#: row i = the bytes of sample i's hex sample_id (``bytes(row).hex()`` gives it back)
FEATURES_SAMPLE_ID = "sample_id"
#: bytes of one sample id in the feature cache (the 128 bits of :data:`SAMPLE_KEY_HEX` hex digits)
FEATURES_SAMPLE_ID_BYTES = SAMPLE_KEY_HEX // 2
#: group attribute of a feature cache holding its schema version, block size and grid
FEATURES_GROUP_ATTR = "fpload_features"
#: chunk length along the sample axis when shards are cut by size only
FEATURES_DEFAULT_CHUNK = 1024

#: image member extensions by pack encoding
IMAGE_EXT = {"png": "png", "jpeg": "jpg", "jp2": "jp2", "raw": "raw", "raw-lz4": "lz4"}
#: tar member order of one sample (image first; ``shape`` only for raw encodings)
MEMBER_ORDER = ("image", "shape", "json", "cls", "idx")
#: the DALI webdataset index format version we write
DALI_INDEX_VERSION = "v1.2"
#: file names a manifest may give (one component inside the version folder)
NOT_PLAIN = "is not a plain file name inside the version folder"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


def order_members(image_ext: str, members: dict[str, bytes | None]) -> list[tuple[str, bytes]]:
    """A sample's tar members as ``(extension, bytes)`` in :data:`MEMBER_ORDER`; ``members`` maps
    each role of MEMBER_ORDER to its bytes (``None``: absent, e.g. ``shape`` of an encoded image),
    the image's extension is ``image_ext``.

    >>> order_members("png", {"idx": b"1", "image": b"P", "json": b"{}", "cls": b"0", "shape": None})
    [('png', b'P'), ('json', b'{}'), ('cls', b'0'), ('idx', b'1')]
    """
    unknown = set(members) - set(MEMBER_ORDER)
    if unknown:
        raise ValueError(f"unknown sample members {sorted(unknown)} (allowed: {', '.join(MEMBER_ORDER)})")
    return [(image_ext if role == "image" else role, members[role])  # type: ignore[misc]
            for role in MEMBER_ORDER if members.get(role) is not None]


def subject_ref(subject_id: str) -> str:
    """The pseudonym every governance file (lineage, audit records, receipts) uses for a subject:
    ``sha256("fpload-subject:" + id)`` hex, never the id itself.

    >>> subject_ref("S001")[:12]
    '3ef45e31f553'
    """
    if not isinstance(subject_id, str) or not subject_id:
        raise ValueError(f"subject id must be a non-empty string, got {subject_id!r}")
    return hashlib.sha256(("fpload-subject:" + subject_id).encode()).hexdigest()


def sample_ref(sample_id: str) -> str:
    """How receipts name an erased sample: ``sha256("fpload-sample:" + sample_id)`` hex.

    >>> len(sample_ref("00" * 16))
    64
    """
    return hashlib.sha256(f"fpload-sample:{sample_id}".encode()).hexdigest()


def sample_key(data: bytes) -> str:
    """The sample id of an image: a hex prefix of the sha256 of its source bytes."""
    return hashlib.sha256(data).hexdigest()[:SAMPLE_KEY_HEX]


def encode_int_member(value: int) -> bytes:
    """Encode a label or index as the fixed-width ASCII digits stored in ``cls`` / ``idx`` members.

    Fixed width keeps them readable by ``int()`` (the webdataset library's ``cls`` decoder) and
    parseable on the GPU as a fixed-size byte tensor.
    """
    if value < 0 or value >= 10**INT_MEMBER_WIDTH:
        raise ValueError(f"integer member out of range: {value}")
    return b"%0*d" % (INT_MEMBER_WIDTH, value)


def int_member_weights() -> np.ndarray:
    """Place values of the ``INT_MEMBER_WIDTH`` digits of a ``cls``/``idx`` member, int64."""
    return 10 ** np.arange(INT_MEMBER_WIDTH - 1, -1, -1, dtype=np.int64)


def decode_int_members(digits: np.ndarray) -> np.ndarray:
    """Vectorised inverse of :func:`encode_int_member` for an ``N × INT_MEMBER_WIDTH`` uint8 array."""
    return (digits.astype(np.int64) - ord("0")) @ int_member_weights()


def encode_shape_member(height: int, width: int, channels: int = 1) -> bytes:
    """The ``shape`` member of raw encodings: int32 little-endian ``[H, W, C]``."""
    return np.asarray([height, width, channels], dtype="<i4").tobytes()


def canonical_json(obj: Any) -> bytes:
    """JSON with sorted keys and no whitespace variance: equal content gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pretty_json(obj: Any) -> bytes:
    """Sorted-key, indented JSON for files people read (still deterministic)."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def compute_version_id(manifest: dict[str, Any]) -> str:
    """Hash of the manifest's content without ``created_at`` and ``version_id``."""
    content = {k: v for k, v in manifest.items() if k not in ("created_at", "version_id")}
    return hashlib.sha256(canonical_json(content)).hexdigest()[:VERSION_ID_HEX]


def features_chunk_samples(shard_max_samples: int | None, samples: int) -> int:
    """Chunk length of a feature cache along the sample axis.

    It is the pack's ``shard_max_samples`` when set (so a shard, at most that long, spans at
    most two chunks, and exactly one when its split starts at a multiple of it), else
    :data:`FEATURES_DEFAULT_CHUNK`; never more than the version's sample count.
    """
    chunk = shard_max_samples or FEATURES_DEFAULT_CHUNK
    return max(1, min(chunk, samples))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (how the manifest pins shards and samples.parquet)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(path: str | Path) -> tuple[str, int]:
    """sha256 over the sorted ``(relative path, file sha256)`` pairs of a folder, and its byte size:
    how the manifest pins a folder such as ``features.zarr``."""
    path = Path(path)
    pairs = []
    total = 0
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        data = p.read_bytes()
        total += len(data)
        pairs.append((p.relative_to(path).as_posix(), hashlib.sha256(data).hexdigest()))
    return combine_tree_digest(pairs), total


def combine_tree_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """The :func:`tree_digest` of a folder from its ``(relative posix path, file sha256)`` pairs
    (sorted here by path components, as paths sort), for callers that already know some hashes."""
    h = hashlib.sha256()
    for rel, digest in sorted(pairs, key=lambda p: p[0].split("/")):
        h.update(f"{rel}\t{digest}\n".encode())
    return h.hexdigest()


def shard_name(split: str, number: int) -> str:
    """File stem of a shard: ``train-000003``."""
    return f"{split}-{number:06d}"


def dali_index_text(samples: Iterable[list[tuple[str, int, int, str]]]) -> str:
    """Text of a DALI webdataset index (format v1.2) from per-sample member lists.

    Each sample is a list of ``(extension, data_offset, size, member_name)``.
    """
    samples = list(samples)
    lines = [f"{DALI_INDEX_VERSION} {len(samples)}"]
    for members in samples:
        lines.append(" ".join(f"{ext} {off} {size} {name}" for ext, off, size, name in members))
    return "\n".join(lines) + "\n"


def read_manifest(version_dir: str | Path) -> dict[str, Any]:
    """Read and check a version's manifest; refuses unknown schema versions."""
    path = Path(version_dir) / MANIFEST_NAME
    try:
        return parse_manifest(path.read_bytes(), path)
    except FileNotFoundError:
        from fpload.errors import VersionNotFoundError

        raise VersionNotFoundError(
            f"no published dataset version at {version_dir} ({MANIFEST_NAME} is missing)"
        ) from None
    except OSError as err:
        raise VersionError(f"{path}: manifest cannot be read ({err.strerror})") from None


def parse_manifest(data: bytes, path: str | Path) -> dict[str, Any]:
    """Parse and check a manifest's bytes (read from ``path``, which errors name); refuses unknown
    schema versions."""
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VersionError(f"{path}: manifest is not valid UTF-8 JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise VersionError(f"{path}: manifest is a JSON {type(manifest).__name__}, not an object")
    found = manifest.get("schema_version")
    if found != MANIFEST_SCHEMA_VERSION:
        raise VersionError(
            f"{path}: manifest schema_version {found!r} is not supported by this fpload "
            f"(it reads {MANIFEST_SCHEMA_VERSION})"
        )
    feats = manifest.get("features")
    if isinstance(feats, dict) and feats.get("schema_version") not in FEATURES_READ_SCHEMA_VERSIONS:
        raise VersionError(f"{path}: the feature cache's schema_version {feats.get('schema_version')!r} "
                           f"is not supported by this fpload (it reads "
                           f"{', '.join(map(str, FEATURES_READ_SCHEMA_VERSIONS))})")
    try:
        _ManifestModel.model_validate(manifest)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise VersionError(f"{path}: field {where}: {e['msg']}") from None
    return manifest


_SHA = Field(pattern=r"^[0-9a-f]{64}$")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _ShardModel(_Entry):
    file: str
    index_file: str
    split: str
    samples: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = _SHA
    index_sha256: str = _SHA


class _FileModel(_Entry):
    file: str
    sha256: str = _SHA
    bytes: int = Field(ge=0)


class _SettingsModel(_Entry):
    encoding: str


class _ManifestModel(_Entry):
    """The fields readers rely on (others are kept as they are); types are strict."""

    version_id: str = Field(pattern=rf"^[0-9a-f]{{{VERSION_ID_HEX}}}$")
    name: str
    samples: int = Field(ge=0)
    labels: int = Field(ge=0)
    splits: list[str]
    counts: dict[str, Annotated[int, Field(ge=0)]]
    settings: _SettingsModel
    shards: list[_ShardModel]
    samples_file: _FileModel
    features: _FileModel | None = None


def index_space(manifest: dict[str, Any]) -> int:
    """Length of a version's global index space: ``samples``, or, for the successor of an erasure,
    the optional ``index_space`` it keeps from its parent (its samples keep their indices and labels,
    the feature cache keeps its rows, the erased rows blank; see :mod:`fpload.erase`).

    >>> index_space({"samples": 3}), index_space({"samples": 3, "index_space": 5})
    (3, 5)
    """
    return int(manifest.get("index_space", manifest["samples"]))


def _plain_name(name: str) -> bool:
    """A single path component: no separator, not ``.``/``..``, not hidden, printable ASCII."""
    return bool(_PLAIN_NAME.fullmatch(name)) and not name.startswith(".")


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What is wrong inside a (structurally valid) manifest, each naming ``manifest.json``:
    content that does not hash to its ``version_id`` (the packer's :func:`compute_version_id`),
    counts that disagree with its shards, or file names that are not plain names inside the
    version folder (no ``/``, ``..``, absolute paths or hidden files)."""
    problems: list[str] = []
    if compute_version_id(manifest) != manifest["version_id"]:
        problems.append(f"{MANIFEST_NAME}: content does not hash to its version_id "
                        f"{manifest['version_id']} (edited)")
    names = [("samples_file", manifest["samples_file"]["file"])]
    if manifest.get("features"):
        names.append(("features", manifest["features"]["file"]))
    for i, s in enumerate(manifest["shards"]):
        names += [(f"shards[{i}].file", s["file"]), (f"shards[{i}].index_file", s["index_file"])]
    for field, name in names:
        if not _plain_name(name):
            problems.append(f"{MANIFEST_NAME}: {field} {name!r} {NOT_PLAIN} "
                            "(letters, digits, '.', '_', '-'; no '/', '..' or leading '.')")
    files = [s["file"] for s in manifest["shards"]] + [s["index_file"] for s in manifest["shards"]]
    if len(set(files)) != len(files):
        dup = next(f for f in files if files.count(f) > 1)
        problems.append(f"{MANIFEST_NAME}: shard file {dup!r} is listed twice")
    counts, splits = manifest["counts"], manifest["splits"]
    if sorted(splits) != sorted(counts) or len(set(splits)) != len(splits):
        problems.append(f"{MANIFEST_NAME}: splits {splits} disagree with counts {counts}")
    per_split: dict[str, int] = {}
    for s in manifest["shards"]:
        per_split[s["split"]] = per_split.get(s["split"], 0) + s["samples"]
    if per_split != {k: v for k, v in counts.items() if v or k in per_split}:
        problems.append(f"{MANIFEST_NAME}: shard sample counts {per_split} disagree with counts {counts}")
    if sum(counts.values()) != manifest["samples"]:
        problems.append(f"{MANIFEST_NAME}: counts {counts} do not add up to samples {manifest['samples']}")
    return problems


def samples_problems(manifest: dict[str, Any], table: Any) -> list[str]:
    """Where ``samples.parquet`` (a pyarrow table) disagrees with its manifest, each naming the
    file: row count, the ``index`` column (0..N-1), each row's split and shard (the manifest's
    shards, in order, hold that many consecutive rows), and labels (0..labels-1, all used)."""
    name = manifest["samples_file"]["file"]
    n = manifest["samples"]
    need = ("index", "split", "label", "shard", "sample_id", "height", "width")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        return [f"{name}: column {missing[0]!r} is missing"]
    if table.num_rows != n:
        return [f"{name}: {table.num_rows} rows, {MANIFEST_NAME} says {n} samples"]
    problems: list[str] = []
    shards = manifest["shards"]
    reps = [s["samples"] for s in shards]

    def first_diff(column: str, want: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        got = table.column(column)
        expected = pa.array(want)
        if got.type != expected.type and not (pa.types.is_integer(got.type) and pa.types.is_integer(expected.type)
                                              or pa.types.is_string(got.type) and pa.types.is_string(expected.type)):
            problems.append(f"{name}: column {column!r} is {got.type}, not {expected.type}")
            return
        differs = pc.fill_null(pc.not_equal(got, expected), True)
        bad = pc.index(differs, True).as_py()
        if bad >= 0:
            problems.append(f"{name}: row {bad} has {column} {got[bad].as_py()!r}, "
                            f"{MANIFEST_NAME} implies {want[bad].item()!r}")

    space = index_space(manifest)
    if space == n:
        first_diff("index", np.arange(n, dtype=np.int64))
    elif n:  # a successor of an erasure keeps its parent's indices: strictly increasing, in range
        index = table.column("index").to_numpy(zero_copy_only=False)
        steps = np.flatnonzero(np.diff(index) <= 0)
        if index.dtype.kind not in "iu" or index[0] < 0 or index[-1] >= space or len(steps):
            problems.append(f"{name}: column 'index' is not strictly increasing within [0, {space}) "
                            f"(the index_space of {MANIFEST_NAME})")
    if sum(reps) == n:
        first_diff("split", np.repeat(np.array([s["split"] for s in shards], dtype=str), reps))
        first_diff("shard", np.repeat(np.array([s["file"] for s in shards], dtype=str), reps))
    labels = table.column("label").to_numpy(zero_copy_only=False)
    if n and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= manifest["labels"]
              or (space == n and len(np.unique(labels)) != manifest["labels"])):
        problems.append(f"{name}: labels span {len(np.unique(labels))} values in "
                        f"[{labels.min()}, {labels.max()}], {MANIFEST_NAME} says {manifest['labels']} labels")
    return problems
