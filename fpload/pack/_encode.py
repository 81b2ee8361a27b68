"""Encode one sample's tar members (runs in worker processes)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from fpload import formats
from fpload.catalog._image import read_image_bytes
from fpload.errors import ImageError

_PASSTHROUGH_EXT = {"png": "png", "jpeg": "jpg", "jp2": "jp2", "tiff": "tiff", "bmp": "bmp"}


def sample_json(row: dict[str, Any]) -> bytes:
    """The ``json`` member: the sample's metadata, sorted keys (no source path: shards are portable)."""
    meta = {k: row[k] for k in ("sample_id", "subject_id", "finger", "impression", "sensor", "ppi",
                                "width", "height", "quality", "split", "synthetic", "label", "index")}
    meta["source_format"] = row["format"]
    cap = row.get("captured_at")
    meta["captured_at"] = cap.isoformat() if isinstance(cap, datetime) else cap
    meta["extra"] = json.loads(row["extra"]) if row.get("extra") else None
    return formats.canonical_json(meta)


def _decode_gray(data: bytes, row: dict[str, Any]):
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("L")
    except OSError as err:
        raise ImageError(f"sample {row['sample_id']}: cannot decode {row['uri']} ({err})") from None


def encode_sample(task: tuple) -> tuple[list[tuple[str, bytes]], dict[str, dict[str, np.ndarray]] | None]:
    """Read a sample's source, check it still hashes to its id, and build its members in order.

    A task is ``(row, settings)`` or ``(row, settings, job, compute)``: with a
    :class:`fpload.features.FeatureJob`, the extractors named in ``compute`` also run on the
    8-bit gray image, and their features (``{extractor: {array: value}}``) come back with the
    members; a passthrough sample whose features are all reused is not even decoded.
    """
    row, settings = task[0], task[1]
    job, compute = (task[2], task[3]) if len(task) > 2 else (None, ())
    uri = row["uri"]
    try:  # regular files only: a source replaced by a device or a FIFO is refused, not read
        data = read_image_bytes(uri, None)
    except ImageError as err:
        raise ImageError(f"sample {row['sample_id']}: source image {err}") from None
    if formats.sample_key(data) != row["sample_id"]:
        raise ImageError(f"sample {row['sample_id']}: source image {uri} changed since it was catalogued "
                         "(its bytes no longer match the sample id)")
    encoding = settings["encoding"]
    shape = None
    gray = None
    if encoding == "passthrough":
        ext, payload = _PASSTHROUGH_EXT[row["format"]], data
    else:
        gray = _decode_gray(data, row)
        ext = formats.IMAGE_EXT[encoding]
        if encoding == "png":
            buf = io.BytesIO()
            gray.save(buf, format="PNG", compress_level=settings["png_compress_level"])
            payload = buf.getvalue()
        elif encoding == "jpeg":
            buf = io.BytesIO()
            gray.save(buf, format="JPEG", quality=settings["jpeg_quality"])
            payload = buf.getvalue()
        else:
            pixels = np.asarray(gray, dtype=np.uint8)
            payload = pixels.tobytes()
            shape = formats.encode_shape_member(*pixels.shape)
            if encoding == "raw-lz4":
                import lz4.block

                payload = lz4.block.compress(payload, store_size=False)
    members = formats.order_members(ext, {"image": payload, "shape": shape, "json": sample_json(row),
                                          "cls": formats.encode_int_member(row["label"]),
                                          "idx": formats.encode_int_member(row["index"])})
    features = None
    if job is not None and compute:
        from fpload.features import run_extractors

        if gray is None:
            gray = _decode_gray(data, row)
        pixels = np.asarray(gray, dtype=np.uint8)
        features = run_extractors(pixels, job, frozenset(compute), row["sample_id"])
    return members, features


def encode_batch(tasks: list[tuple]) -> list[tuple[list[tuple[str, bytes]], dict | None]]:
    """Encode a chunk of samples (one inter-process round trip per chunk)."""
    return [encode_sample(t) for t in tasks]
