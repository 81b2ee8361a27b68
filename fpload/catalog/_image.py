"""Read and probe one image for ingest: only regular files, within size and pixel limits, and only
pixels every reader of fpload decodes alike.

The rule (documented in the README): fpload stores the source bytes and its readers decode them
twice: the loader with DALI (``fn.decoders.image``, output GRAY) and the feature extractors and
re-encoding pack with Pillow (``convert("L")``). An image is accepted only where both give the
same 8-bit grey pixels:

- 8-bit greyscale (``L``), 1-bit (``1``), greyscale with alpha (``LA``): identical;
- 8-bit colour (``RGB``, ``RGBA``, palette ``P``): converted by ITU-R 601 luma; the two decoders
  round it differently, by at most one grey level;
- refused, with one line saying how to convert: 16-bit and 32-bit integer and float images (DALI
  reduces 16 to 8 bits by its own rule while Pillow clips), CMYK and other colour spaces,
  multi-page or animated files (only the first page would be read), and images with an EXIF
  orientation other than 1 (DALI rotates them, Pillow does not).

WSQ (the FBI's fingerprint codec, 8-bit grey by definition) is accepted when the optional extra
``fpload[nist]`` is installed; DALI cannot decode it, so the packer transcodes it (see
:mod:`fpload.pack._encode`), and it is decoded only in a sandbox process (:mod:`fpload.catalog._wsq`).

Example::

    >>> from fpload.catalog._image import ImageLimits, probe_image
    >>> probe_image("captures/a.png", ImageLimits(max_bytes=8 << 20))   # doctest: +SKIP
    {'sample_id': '3f1c…', 'width': 40, 'height': 48, 'format': 'png'}
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
from PIL import Image, UnidentifiedImageError

from fpload import _png

from fpload.catalog import _wsq
from fpload.errors import ImageError
from fpload.formats import sample_key

#: PIL format name → catalog ``format`` value
SUPPORTED_FORMATS = {"PNG": "png", "JPEG": "jpeg", "JPEG2000": "jp2", "TIFF": "tiff", "BMP": "bmp"}
#: catalog ``format`` values of images decoded outside Pillow (WSQ: NBIS in a sandbox process)
SANDBOXED_FORMATS = ("wsq",)
#: pixel modes whose grey conversion DALI and Pillow agree on (see the module's docstring)
ACCEPTED_MODES = ("L", "1", "LA", "P", "RGB", "RGBA")
_MODE_NAMES = {"I;16": "16-bit greyscale", "I;16B": "16-bit greyscale", "I;16L": "16-bit greyscale",
               "I;16N": "16-bit greyscale", "I": "32-bit integer", "F": "32-bit float",
               "CMYK": "CMYK colour", "YCbCr": "YCbCr colour", "LAB": "Lab colour", "HSV": "HSV colour",
               "PA": "palette with alpha"}
_CONVERT_HINT = ("convert it to 8-bit greyscale first (e.g. `magick IN -depth 8 -colorspace Gray OUT.png`; "
                 "for 16-bit data in NumPy, round(v * 255 / 65535))")
_EXIF_ORIENTATION = 0x0112
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageLimits:
    """What ingest agrees to read per image: bytes on disk and decoded pixels (width × height)."""

    max_bytes: int = 64 << 20
    max_pixels: int = 64_000_000


def read_image_bytes(uri: str, max_bytes: int | None) -> bytes:
    """The bytes of one image file, refusing anything but a regular file of at most ``max_bytes``
    (``None``: any size).

    Local files are checked with ``stat`` before opening and opened non-blocking, so a device
    (``/dev/zero``) or a FIFO is refused, never read or waited on; a file that grows while being
    read is refused too.
    """
    max_bytes = (1 << 62) if max_bytes is None else max_bytes
    protocol, _, rest = uri.partition("://") if "://" in uri else ("file", "", uri)
    if protocol == "file":
        return _read_local(rest, max_bytes)
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        info = fs.info(path)
        if info.get("type") not in ("file", None):
            raise ImageError(f"{uri}: not a regular file ({info.get('type')})")
        if info.get("size") is not None and info["size"] > max_bytes:
            raise ImageError(_too_big(uri, info["size"], max_bytes))
        with fs.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageError(f"{uri}: image file not found") from None
    except ImportError as err:
        raise ImageError(f"{uri}: no fsspec backend for {protocol}:// ({err})") from None
    except OSError as err:
        raise ImageError(f"{uri}: cannot read ({_first_line(err)})") from None
    if len(data) > max_bytes:
        raise ImageError(_too_big(uri, len(data), max_bytes))
    return data


def _read_local(path: str, max_bytes: int) -> bytes:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path}: not a regular file (a folder, device, FIFO or socket); only image "
                             "files are read")
        if st.st_size > max_bytes:
            raise ImageError(_too_big(path, st.st_size, max_bytes))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)  # what was opened, not what the name pointed to a moment ago
            if not stat.S_ISREG(st.st_mode):
                raise ImageError(f"{path}: not a regular file; only image files are read")
            if st.st_size > max_bytes:
                raise ImageError(_too_big(path, st.st_size, max_bytes))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(st.st_size + 1)  # one byte more: a file growing meanwhile shows
        finally:
            os.close(fd)
        if len(data) != st.st_size:
            raise ImageError(f"{path}: changed size while being read ({st.st_size} bytes, then {len(data)})")
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise ImageError(f"{path}: cannot read ({_first_line(err)})") from None
    if len(data) > max_bytes:
        raise ImageError(_too_big(path, len(data), max_bytes))
    return data


def _too_big(uri: str, size: int, limit: int) -> str:
    return (f"{uri}: {size} bytes is over the image size limit of {limit} bytes "
            "(raise it with --max-image-mb if the file is a genuine image)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def probe_image(uri: str, limits: ImageLimits | None = None, extract: Any = None) -> dict[str, Any]:
    """Read, hash and fully decode one image; :class:`ImageError` names the file on any problem.

    Returns the catalog fields of the image: ``sample_id``, ``width``, ``height``, ``format``;
    with ``extract`` (a function of the 8-bit gray pixels and the sample id, as the packer decodes
    them), also ``_features``, what it returns.
    """
    limits = limits or ImageLimits()
    return probe_bytes(read_image_bytes(uri, limits.max_bytes), uri, limits, extract)


def probe_bytes(data: bytes, uri: str, limits: ImageLimits | None = None, extract: Any = None) -> dict[str, Any]:
    """Hash and fully decode image bytes read from ``uri`` (a file, or an image inside a biometric
    record); the fields and errors of :func:`probe_image`.

    WSQ is decoded in a sandbox process (:mod:`fpload.catalog._wsq`), after its frame header is
    checked against ``limits.max_pixels``.
    """
    limits = limits or ImageLimits()
    if not data:
        raise ImageError(f"{uri}: image file is empty")
    if len(data) > limits.max_bytes:
        raise ImageError(_too_big(uri, len(data), limits.max_bytes))
    if _wsq.is_wsq(data):
        try:
            pixels = _wsq.decode_wsq(data, limits.max_pixels)
        except (ValueError, ImportError) as err:
            raise ImageError(f"{uri}: {_first_line(err)}") from None
        sid = sample_key(data)
        extra = {} if extract is None else {"_features": extract(np.ascontiguousarray(pixels, np.uint8), sid)}
        return {"sample_id": sid, "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                "format": "wsq", **extra}
    try:
        # Image.open reads the header only; Pillow's own bomb check warns through the global
        # warnings filters, which are not thread-safe: ours is the limit, checked just below.
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageError(f"{uri}: declares too many pixels ({_first_line(err)}); "
                         f"the limit is {limits.max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{uri}: not an image (or a format fpload cannot read)") from None
    except Exception as err:  # noqa: BLE001 - Pillow's header parsers raise many kinds on junk
        raise ImageError(f"{uri}: corrupt image header ({type(err).__name__}: {_first_line(err)})") from None
    with img:
        fmt, mode, (width, height) = img.format, img.mode, img.size
        if fmt not in SUPPORTED_FORMATS:
            raise ImageError(f"{uri}: unsupported image format {fmt} (supported: {', '.join(SUPPORTED_FORMATS)})")
        if width <= 0 or height <= 0 or width * height > limits.max_pixels:
            raise ImageError(f"{uri}: {width}×{height} = {width * height} pixels is over the limit of "
                             f"{limits.max_pixels} pixels (a decompression bomb, or raise --max-image-pixels)")
        if mode not in ACCEPTED_MODES:
            name = _MODE_NAMES.get(mode, f"pixel mode {mode}")
            raise ImageError(f"{uri}: {name} images are not supported (fpload reads 8-bit grey or colour "
                             f"pixels); {_CONVERT_HINT}")
        # an 8-bit grey PNG in the plain layout decodes in C++ (fpload._png: the pixels Pillow gives,
        # in under half the time); such a file has one frame and no orientation (no EXIF or XMP)
        pixels = _png.decode_gray8(data, max_pixels=None) if fmt == "PNG" and mode == "L" else None
        try:
            if pixels is not None:
                frames, orientation = 1, None
            else:
                frames = getattr(img, "n_frames", 1)
                orientation = img.getexif().get(_EXIF_ORIENTATION)
                img.load()  # a full decode: catches truncated and corrupt files
        except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many kinds on junk
            raise ImageError(f"{uri}: corrupt or truncated image ({type(err).__name__}: "
                             f"{_first_line(err)})") from None
        if frames != 1:
            raise ImageError(f"{uri}: holds {frames} pages or frames; fpload reads single-image files "
                             "only (split it into one file per page)")
        if orientation not in (None, 1):
            raise ImageError(f"{uri}: EXIF orientation {orientation} (rotated or mirrored): decoders disagree "
                             "on applying it; save the image upright without the tag first "
                             "(e.g. PIL.ImageOps.exif_transpose)")
        sid = sample_key(data)
        if extract is None:
            extra = {}
        else:
            extra = {"_features": extract(pixels if pixels is not None else np.asarray(img.convert("L")), sid)}
    return {"sample_id": sid, "width": width, "height": height,
            "format": SUPPORTED_FORMATS[fmt], **extra}
