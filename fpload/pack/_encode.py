"""Encode one sample's tar members (runs in worker processes).

Under ``passthrough`` the source bytes are stored as they are when DALI decodes their format
(PNG, JPEG, JPEG 2000, TIFF, BMP). Two cases are transcoded, losslessly, to PNG instead, and
counted in the manifest's ``transcoded`` entry (:func:`transcode_summary`):

- WSQ sources, which DALI cannot decode (decoded by NBIS in a sandbox process, see
  :mod:`fpload.catalog._wsq`);
- samples resampled to the pack setting ``resample_to_ppi`` (:func:`resample_rows`): Pillow's
  Lanczos filter (``Image.LANCZOS``, a windowed sinc over 3 lobes) to
  ``round(width * resample_to_ppi / ppi)`` × ``round(height * resample_to_ppi / ppi)`` pixels.

Every other encoding decodes every source (WSQ included) and encodes the version's format.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from fpload import _png, formats
from fpload._threads import thread_pool
from fpload.catalog import _wsq
from fpload.catalog._records import read_source_bytes
from fpload.config import env_read_threads
from fpload.errors import ImageError


_PASSTHROUGH_EXT = {"png": "png", "jpeg": "jpg", "jp2": "jp2", "tiff": "tiff", "bmp": "bmp"}
#: the lossless format a passthrough version stores sources DALI cannot decode (WSQ) or resampled samples in
PASSTHROUGH_TRANSCODE = "png"
#: the filter of ``resample_to_ppi`` (named in the manifest)
RESAMPLE_FILTER = "lanczos"


def resample_rows(rows: list[dict[str, Any]], to_ppi: int | None) -> None:
    """Set the packed size and ppi of every row whose ``ppi`` is not ``to_ppi`` (in place).

    Such a row gets ``source_ppi`` (its catalog ppi), ``ppi = to_ppi`` and width and height
    scaled by ``to_ppi / source_ppi`` (rounded half to even, at least 1); :func:`encode_sample` resamples its
    pixels to that size. ``None`` changes nothing.

    >>> rows = [{"ppi": 1000, "width": 801, "height": 600}, {"ppi": 500, "width": 8, "height": 8}]
    >>> resample_rows(rows, 500); rows[0]
    {'ppi': 500, 'width': 400, 'height': 300, 'source_ppi': 1000}
    """
    if to_ppi is None:
        return
    for row in rows:
        src = row["ppi"]
        if src == to_ppi or row.get("source_ppi") is not None:
            continue
        row["source_ppi"] = src
        row["width"] = max(1, round(row["width"] * to_ppi / src))
        row["height"] = max(1, round(row["height"] * to_ppi / src))
        row["ppi"] = to_ppi


def transcode_summary(rows: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's ``transcoded`` entry: what a passthrough pack did not store as it came, and the
    resampling; None when nothing was (so versions without WSQ or resampling keep their ids).

    >>> transcode_summary([{"format": "wsq"}, {"format": "png"}], {"encoding": "passthrough"})
    {'wsq': {'samples': 1, 'to': 'png'}}
    """
    out: dict[str, Any] = {}
    if settings["encoding"] == "passthrough":
        n = sum(1 for r in rows if r["format"] not in _PASSTHROUGH_EXT)
        if n:
            out["wsq"] = {"samples": n, "to": PASSTHROUGH_TRANSCODE}
    resampled = sum(1 for r in rows if r.get("source_ppi") is not None)
    if resampled:
        out["resampled"] = {"samples": resampled, "to_ppi": settings.get("resample_to_ppi"),
                            "filter": RESAMPLE_FILTER}
    return out or None


def sample_json(row: dict[str, Any]) -> bytes:
    """The ``json`` member: the sample's metadata, sorted keys (no source path: shards are portable)."""
    meta = {k: row[k] for k in ("sample_id", "subject_id", "finger", "impression", "sensor", "ppi",
                                "width", "height", "quality", "split", "synthetic", "label", "index")}
    meta["source_format"] = row["format"]
    if row.get("source_ppi") is not None:
        meta["source_ppi"] = row["source_ppi"]
    cap = row.get("captured_at")
    meta["captured_at"] = cap.isoformat() if isinstance(cap, datetime) else cap
    meta["extra"] = json.loads(row["extra"]) if row.get("extra") else None
    return formats.canonical_json(meta)


def _decode_gray(data: bytes, row: dict[str, Any]):
    """The 8-bit grey image of a sample, at its packed size (resampled when ``source_ppi`` is set)."""
    try:
        if row["format"] == "wsq":
            img = Image.fromarray(_wsq.decode_wsq(data, max_pixels=1 << 40), mode="L")
        else:
            with Image.open(io.BytesIO(data)) as src:
                img = src.convert("L")
    except (OSError, ValueError, ImportError) as err:
        raise ImageError(f"sample {row['sample_id']}: cannot decode {row['uri']} ({err})") from None
    if img.size != (row["width"], row["height"]):
        if row.get("source_ppi") is None:
            raise ImageError(f"sample {row['sample_id']}: {row['uri']} decodes to {img.size[0]}×{img.size[1]} "
                             f"pixels, the catalog says {row['width']}×{row['height']}")
        img = img.resize((row["width"], row["height"]), Image.LANCZOS)
    return img


def _decode_pixels(data: bytes, row: dict[str, Any]) -> np.ndarray:
    """:func:`_decode_gray` as a uint8 array; an 8-bit grey PNG at its catalogued size goes through
    :func:`fpload._png.decode_gray8` (the same pixels as Pillow's, in under half the time)."""
    if row["format"] == "png" and row.get("source_ppi") is None:
        pixels = _png.decode_gray8(data)
        if pixels is not None:
            if pixels.shape != (row["height"], row["width"]):
                raise ImageError(f"sample {row['sample_id']}: {row['uri']} decodes to {pixels.shape[1]}×"
                                 f"{pixels.shape[0]} pixels, the catalog says {row['width']}×{row['height']}")
            return pixels
    return np.asarray(_decode_gray(data, row), dtype=np.uint8)


def encode_sample(task: tuple) -> tuple[list[tuple[str, bytes]], dict[str, dict[str, np.ndarray]] | None]:
    """Read a sample's source, check it still hashes to its id, and build its members in order.

    A task is ``(row, settings)`` or ``(row, settings, job, compute)``: with a
    :class:`fpload.features.FeatureJob`, the extractors named in ``compute`` also run on the
    8-bit gray image, and their features (``{extractor: {array: value}}``) come back with the
    members; a passthrough sample whose features are all reused is not even decoded.
    """
    members, request = _encode(task)
    if request is None:
        return members, None
    from fpload.features import run_extractors

    return members, run_extractors(*request)


def _read_source(row: dict[str, Any]) -> bytes:
    """The source bytes of a sample; regular files only (a source replaced by a device or a FIFO
    is refused, not read), one line naming the sample and the file otherwise."""
    try:
        return read_source_bytes(row["uri"], None)
    except ImageError as err:
        raise ImageError(f"sample {row['sample_id']}: source image {err}") from None


def _prefetch(tasks: list[tuple]) -> list[Any]:
    """The source bytes of every task (or the error reading them), read by ``FPLOAD_READ_THREADS``
    (default 8) threads at once: on network filesystems and cloud disks a read waits on latency,
    not on this CPU, so a worker reading one file at a time packs at the disk's round trips per second."""
    threads = env_read_threads()
    if len(tasks) < 2 or threads < 2:
        return [None] * len(tasks)
    pool = thread_pool("fpload-read", threads)   # per process: the pack's workers are forked

    def read(task: tuple) -> Any:
        try:
            return _read_source(task[0])
        except Exception as err:  # noqa: BLE001 - raised in order by _encode, as a serial read would
            return err

    return list(pool.map(read, tasks))


def _encode(task: tuple, data: Any = None) -> tuple[list[tuple[str, bytes]], tuple | None]:
    """A sample's members, and ``(pixels, job, compute, sample_id)`` when features are to be computed.
    ``data``: the source's bytes (or the error reading them) when read ahead, else None."""
    row, settings = task[0], task[1]
    job, compute = (task[2], task[3]) if len(task) > 2 else (None, ())
    uri = row["uri"]
    if isinstance(data, BaseException):
        raise data
    if data is None:
        data = _read_source(row)
    if formats.sample_key(data) != row["sample_id"]:
        raise ImageError(f"sample {row['sample_id']}: source image {uri} changed since it was catalogued "
                         "(its bytes no longer match the sample id)")
    encoding = settings["encoding"]
    shape = None
    gray = None
    if encoding == "passthrough" and row["format"] in _PASSTHROUGH_EXT and row.get("source_ppi") is None:
        ext, payload = _PASSTHROUGH_EXT[row["format"]], data
    else:
        if encoding == "passthrough":  # WSQ (DALI cannot decode it) or resampled: lossless PNG
            encoding = PASSTHROUGH_TRANSCODE
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
    if job is None or not compute:
        return members, None
    pixels = _decode_pixels(data, row) if gray is None else np.asarray(gray, dtype=np.uint8)
    return members, (pixels, job, frozenset(compute), row["sample_id"])


def encode_batch(tasks: list[tuple]) -> list[tuple[list[tuple[str, bytes]], dict | None]]:
    """Encode a chunk of samples (one inter-process round trip per chunk); when a deep pyfing
    extractor batches (:func:`fpload.features.batches_deep`), the chunk's features are computed
    together, its forward passes batched (:func:`fpload.features.run_extractors_many`).
    The first failing sample's error is raised, as one sample at a time would."""
    done: list[tuple[list[tuple[str, bytes]], tuple | None]] = []
    failure = None
    for t, data in zip(tasks, _prefetch(tasks)):
        try:
            done.append(_encode(t, data))
        except Exception as err:  # noqa: BLE001 - raised below, after the features of the samples before it
            failure = err
            break
    requests = [r for _, r in done if r is not None]
    computed = iter([])
    if requests:
        from fpload import features

        if any(features.batches_deep(job) for job in {id(r[1]): r[1] for r in requests}.values()):
            computed = iter(features.run_extractors_many(requests))
        else:  # nothing to batch: one sample at a time, as encode_sample
            computed = iter([features.run_extractors(*r) for r in requests])
    out = [(members, None if r is None else next(computed)) for members, r in done]
    if failure is not None:
        raise failure
    return out
