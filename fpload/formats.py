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
from pathlib import Path
from typing import Any, Iterable

import numpy as np

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


def decode_int_members(digits: np.ndarray) -> np.ndarray:
    """Vectorised inverse of :func:`encode_int_member` for an ``N × INT_MEMBER_WIDTH`` uint8 array."""
    weights = 10 ** np.arange(INT_MEMBER_WIDTH - 1, -1, -1, dtype=np.int64)
    return (digits.astype(np.int64) - ord("0")) @ weights


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
    h = hashlib.sha256()
    total = 0
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        data = p.read_bytes()
        total += len(data)
        h.update(f"{p.relative_to(path).as_posix()}\t{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest(), total


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
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        from fpload.errors import VersionNotFoundError

        raise VersionNotFoundError(
            f"no published dataset version at {version_dir} ({MANIFEST_NAME} is missing)"
        ) from None
    except json.JSONDecodeError as err:
        raise VersionError(f"{path}: manifest is not valid JSON ({err})") from None
    found = manifest.get("schema_version")
    if found != MANIFEST_SCHEMA_VERSION:
        raise VersionError(
            f"{path}: manifest schema_version {found!r} is not supported by this fpload "
            f"(it reads {MANIFEST_SCHEMA_VERSION})"
        )
    return manifest
