"""WSQ (FBI Wavelet Scalar Quantization) images: header parsing here, decoding in a sandbox process.

The only maintained WSQ codec on PyPI is IDEMIA's ``wsq`` (NIST's NBIS decoder as a Pillow
plugin, the optional extra ``fpload[nist]``). Its C decoder is not safe on hostile bytes: mutated
WSQ files crash it with a segmentation fault (checked here, a few in every thousand random
mutations). So fpload never decodes WSQ in its own process:

- :func:`wsq_size` reads the frame header (SOF marker) in Python, bounded and checked, so the
  pixel limit is enforced *before* any decoding; images narrower or shorter than
  :data:`MIN_SIDE` pixels are refused (the codec's output for them is undefined: garbage that
  changes from one decode to the next);
- :func:`decode_wsq` sends the bytes to a long-lived helper process (``python -I``, importing only
  the C codec, stdout/stderr to ``/dev/null``, address space capped) and reads back the pixels;
  a crash, a timeout or a wrong pixel count of that helper is a :class:`ValueError` for this one
  image, and the next image gets a fresh helper.

Encoding (:func:`encode_wsq`) is of fpload's own pixels (synthetic images, exports) and runs in
process.

Example::

    >>> from fpload.catalog._wsq import encode_wsq, decode_wsq, wsq_size   # doctest: +SKIP
    >>> data = encode_wsq(np.full((64, 80), 128, np.uint8))                 # doctest: +SKIP
    >>> wsq_size(data), decode_wsq(data, max_pixels=10**6).shape            # doctest: +SKIP
    ((80, 64), (64, 80))
"""

from __future__ import annotations

import atexit
import os
import select
import struct
import subprocess
import sys
import threading
import time

import numpy as np

#: the first bytes of every WSQ file: SOI marker (FFA0) then usually a table or comment marker
WSQ_MAGIC = b"\xff\xa0"
#: seconds one helper may take for one image before it is killed and the image refused
DECODE_TIMEOUT_S = 60.0
#: the smallest width and height read or written: below about 52 pixels the NBIS codec reads
#: outside the image (garbage pixels that differ from one decode to the next; checked here)
MIN_SIDE = 64
_MARKERS_WITH_LENGTH = {0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8}  # SOB, DTT, DQT, DHT, DRT, COM
_SOF = 0xA2
_INSTALL_HINT = "install fpload's optional extra for biometric records: pip install 'fpload[nist]'"

# The helper: reads frames (4-byte big-endian length + WSQ bytes) on stdin and answers
# b"K" + width, height, ppi (3 × uint32) + pixels, or b"E" + a message.
_CHILD = r"""
import os, resource, struct, sys
limit = int(sys.argv[1])
try:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ValueError, OSError):
    pass
out = os.fdopen(os.dup(1), "wb")
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
inp = sys.stdin.buffer
import _wsq
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    (n,) = struct.unpack(">I", head)
    data = inp.read(n)
    try:
        buf, w, h, ppi = _wsq.decompress(data)
        reply = b"K" + struct.pack(">III", w, h, max(0, int(ppi))) + bytes(buf)
    except Exception as err:
        reply = b"E" + str(err).encode("utf-8", "replace")[:200]
    out.write(struct.pack(">I", len(reply)) + reply)
    out.flush()
"""


def wsq_available() -> bool:
    """True when the WSQ codec (``pip install 'fpload[nist]'``) is importable."""
    try:
        import _wsq  # noqa: F401
    except ImportError:
        return False
    return True


def is_wsq(data: bytes) -> bool:
    """Whether ``data`` starts like a WSQ file (SOI marker)."""
    return data[:2] == WSQ_MAGIC


def wsq_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a WSQ file's frame header; ValueError when there is none.

    Walks the markers from the start (SOI, then tables and comments with their lengths) up to
    the Start Of Frame, never past the end of ``data``.

    >>> wsq_size(b"\\xff\\xa0\\xff\\xa2\\x00\\x11\\x00\\xff\\x00\\x40\\x00\\x50" + bytes(9))
    (80, 64)
    """
    if not is_wsq(data):
        raise ValueError("not a WSQ file (no start-of-image marker FFA0)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"corrupt WSQ header (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == _SOF:
            if pos + 10 > len(data):
                break
            height = int.from_bytes(data[pos + 6:pos + 8], "big")
            width = int.from_bytes(data[pos + 8:pos + 10], "big")
            if width <= 0 or height <= 0:
                raise ValueError(f"WSQ frame header declares {width}×{height} pixels")
            return width, height
        if marker not in _MARKERS_WITH_LENGTH:
            raise ValueError(f"corrupt WSQ header (unexpected marker FF{marker:02X} at byte {pos})")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            raise ValueError(f"corrupt WSQ header (segment length {length} at byte {pos})")
        pos += 2 + length
    raise ValueError("truncated WSQ file (no frame header)")


def encode_wsq(pixels: np.ndarray, bitrate: float = 2.25) -> bytes:
    """WSQ bytes of an 8-bit grey image (H, W); ``bitrate`` as NBIS ``cwsq`` takes it (2.25 ≈ 5:1)."""
    try:
        import _wsq
    except ImportError:
        from fpload.errors import UsageError

        raise UsageError(f"writing WSQ needs the WSQ codec: {_INSTALL_HINT}") from None
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 2:
        raise ValueError(f"WSQ holds one grey channel; got an array of shape {pixels.shape}")
    h, w = pixels.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"WSQ needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels, got {w}×{h}")
    return bytes(_wsq.compress(pixels.tobytes(), h, w, float(bitrate)))


class _Helper:
    """One sandbox process; one image at a time."""

    def __init__(self, max_pixels: int) -> None:
        limit = (1 << 30) + 16 * max_pixels
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", _CHILD, str(limit)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        self.max_pixels = max_pixels

    def decode(self, data: bytes, timeout: float) -> bytes:
        stdin = self.proc.stdin  # a pipe: Popen was given stdin=PIPE
        stdin.write(struct.pack(">I", len(data)) + data)  # type: ignore[union-attr]
        stdin.flush()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        head = self._read(4, deadline)
        (n,) = struct.unpack(">I", head)
        return self._read(n, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        parts, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            part = os.read(fd, min(n - got, 1 << 20))
            if not part:
                raise EOFError
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for fh in (self.proc.stdin, self.proc.stdout):
            try:
                fh.close()  # type: ignore[union-attr]
            except OSError:
                pass


_LOCK = threading.Lock()
_IDLE: list[_Helper] = []
_OWNER = os.getpid()


def _take(max_pixels: int) -> _Helper:
    global _OWNER
    with _LOCK:
        if _OWNER != os.getpid():  # a forked child: the parent's helpers are not ours to use
            _IDLE.clear()
            _OWNER = os.getpid()
        while _IDLE:
            helper = _IDLE.pop()
            if helper.max_pixels >= max_pixels and helper.proc.poll() is None:
                return helper
            helper.close()
    return _Helper(max_pixels)


def _give_back(helper: _Helper) -> None:
    with _LOCK:
        if _OWNER == os.getpid():
            _IDLE.append(helper)
            return
    helper.close()


@atexit.register
def _close_all() -> None:
    with _LOCK:
        helpers = list(_IDLE) if _OWNER == os.getpid() else []
        _IDLE.clear()
    for helper in helpers:
        helper.close()


def decode_wsq(data: bytes, max_pixels: int, timeout: float = DECODE_TIMEOUT_S) -> np.ndarray:
    """The 8-bit grey pixels (H, W) of WSQ bytes, decoded in a sandbox process.

    ValueError (with a one-line reason, no file name: the caller adds it) when the header is
    corrupt, declares more than ``max_pixels`` pixels, or the decoder fails, crashes or runs
    past ``timeout`` seconds; ImportError when the codec is not installed.
    """
    width, height = wsq_size(data)
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"WSQ image of {width}×{height} pixels: fpload reads WSQ of at least {MIN_SIDE}×{MIN_SIDE} "
                         "(the NBIS codec is undefined on smaller ones)")
    if width * height > max_pixels:
        raise ValueError(f"{width}×{height} = {width * height} pixels is over the limit of {max_pixels} pixels "
                         "(a decompression bomb, or raise --max-image-pixels)")
    if not wsq_available():
        raise ImportError(f"WSQ images need the WSQ codec: {_INSTALL_HINT}")
    helper = _take(max_pixels)
    try:
        reply = helper.decode(data, timeout)
    except TimeoutError:
        helper.close()
        raise ValueError(f"the WSQ decoder ran past {timeout:g} s on this image (corrupt data?)") from None
    except (EOFError, OSError, struct.error):
        helper.close()
        raise ValueError("the WSQ decoder crashed on this image (corrupt or hostile data)") from None
    _give_back(helper)
    if reply[:1] != b"K" or len(reply) < 13:
        text = reply[1:].decode("utf-8", "replace").strip() or "corrupt data"
        raise ValueError(f"corrupt WSQ image ({text})")
    w, h, _ppi = struct.unpack(">III", reply[1:13])
    pixels = reply[13:]
    if (w, h) != (width, height) or len(pixels) != w * h:
        raise ValueError(f"corrupt WSQ image (header says {width}×{height}, decoder gave {w}×{h} "
                         f"and {len(pixels)} pixels)")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w)
