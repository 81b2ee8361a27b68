"""ShardWriter: deterministic WebDataset tar shards with their DALI index."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
# the fixed fields of our ustar headers (mode 0644, uid/gid 0, mtime 0, regular file, no owner
# names), byte for byte what ``tarfile`` writes for such a member
_MODE_UID_GID = b"0000644\x00" + b"0000000\x00" * 2
_MTIME = b"00000000000\x00"
# typeflag, linkname, magic + version, uname, gname, devmajor, devminor (empty: not a device), prefix
_AFTER_CHKSUM = b"0" + b"\x00" * 100 + b"ustar\x0000" + b"\x00" * 64 + b"\x00" * 16 + b"\x00" * 155
_CONST_SUM = sum(_MODE_UID_GID) + sum(_MTIME) + sum(b" " * 8) + sum(_AFTER_CHKSUM)


def ustar_header(name: str, size: int) -> bytes:
    """The 512-byte ustar header of a regular file with our fixed mode, owner and time.

    Equal to ``tarfile``'s header for the same member (tests compare them), at a fraction of
    its cost: packing writes several of these per sample.
    """
    raw = name.encode()
    if len(raw) > 100 or size >= 8**11:
        raise ValueError(f"tar member {name!r} ({size} bytes) does not fit a ustar header")
    name_field = raw + b"\x00" * (100 - len(raw))
    size_field = b"%011o\x00" % size
    chksum = _CONST_SUM + sum(raw) + sum(size_field)
    header = b"".join((name_field, _MODE_UID_GID, size_field, _MTIME, b"%06o\x00 " % chksum,
                       _AFTER_CHKSUM))
    return header + b"\x00" * (_BLOCK - len(header))

from fpload import formats


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records of one written shard."""

    file: str
    index_file: str
    split: str
    samples: int
    bytes: int
    sha256: str
    index_sha256: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._raw.write(b)
        self.sha.update(b)
        self.size += len(b)
        return len(b)

    def tell(self) -> int:
        return self.size


class ShardWriter:
    """Writes one shard: a POSIX (ustar) tar whose headers carry no time, owner or absolute path,
    plus the DALI index beside it. The same samples give byte-identical files.

    Example::

        with ShardWriter(tmp / "train-000000", split="train") as w:
            w.add("3f2a...", [("png", png_bytes), ("json", b"{}"), ("cls", b"000000000001")])
        w.info.sha256
    """

    def __init__(self, stem: str | Path, split: str, fs: Any = None):
        # ``fs``: an fsspec file system (s3fs) that ``stem``, a path in it, names: the shard is
        # streamed to the store (a multipart upload, nothing on local disk; fpload.pack._ray)
        self.stem = Path(stem) if fs is None else str(stem)
        self.split = split
        self._fs = fs
        self._file = open(self._path(".tar"), "wb") if fs is None else fs.open(self._path(".tar"), "wb")
        self._hw = _HashingWriter(self._file)
        self._index: list[list[tuple[str, int, int, str]]] = []
        self.info: ShardInfo | None = None

    def _path(self, suffix: str) -> Any:
        return self.stem.with_suffix(suffix) if self._fs is None else self.stem + suffix

    @property
    def samples(self) -> int:
        return len(self._index)

    @property
    def bytes_written(self) -> int:
        return self._hw.size

    def add(self, key: str, members: list[tuple[str, bytes]]) -> None:
        """Append one sample; ``members`` are ``(extension, bytes)`` in their fixed order."""
        entry = []
        parts = []
        at = self._hw.size
        for ext, data in members:
            name = f"{key}.{ext}"
            size = len(data)
            parts += [ustar_header(name, size), data, b"\x00" * (-size % _BLOCK)]
            entry.append((ext, at + _BLOCK, size, name))
            at += _BLOCK + size + (-size % _BLOCK)
        self._hw.write(b"".join(parts))
        self._index.append(entry)

    def close(self) -> ShardInfo:
        """Finish the tar, write the index, and return what the manifest records."""
        if self.info is not None:
            return self.info
        end = self._hw.size + 2 * _BLOCK  # the end-of-archive blocks, padded to a whole record
        self._hw.write(b"\x00" * (2 * _BLOCK + (-end % _RECORD)))
        self._file.close()
        index_text = formats.dali_index_text(self._index).encode()
        if self._fs is None:
            self._path(".idx").write_bytes(index_text)
        else:
            self._fs.pipe_file(self._path(".idx"), index_text)
        self.index_bytes = len(index_text)
        stem_name = self.stem.name if self._fs is None else self.stem.rsplit("/", 1)[-1]
        self.info = ShardInfo(
            file=stem_name + ".tar",
            index_file=stem_name + ".idx",
            split=self.split,
            samples=len(self._index),
            bytes=self._hw.size,
            sha256=self._hw.sha.hexdigest(),
            index_sha256=hashlib.sha256(index_text).hexdigest(),
        )
        return self.info

    def abort(self) -> None:
        """Close and delete what was written (used when packing fails); on a store the upload is
        discarded, never committed."""
        if self._fs is None:
            self._file.close()
            for suffix in (".tar", ".idx"):
                self._path(suffix).unlink(missing_ok=True)
            return
        discard = getattr(self._file, "discard", None)
        if discard is not None and not self._file.closed:
            discard()  # an s3fs file: aborts its multipart upload, writes nothing
            self._file.closed = True  # never committed by a later close() (or __del__)
        else:
            self._file.close()
        for suffix in (".tar", ".idx"):
            try:
                self._fs.rm_file(self._path(suffix))
            except FileNotFoundError:
                pass

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
