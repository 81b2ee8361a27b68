"""ShardWriter: deterministic WebDataset tar shards with their DALI index."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

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

    def __init__(self, stem: str | Path, split: str):
        self.stem = Path(stem)
        self.split = split
        self._file = open(self.stem.with_suffix(".tar"), "wb")
        self._hw = _HashingWriter(self._file)
        self._tar = tarfile.open(fileobj=self._hw, mode="w", format=tarfile.USTAR_FORMAT)
        self._index: list[list[tuple[str, int, int, str]]] = []
        self.info: ShardInfo | None = None

    @property
    def samples(self) -> int:
        return len(self._index)

    @property
    def bytes_written(self) -> int:
        return self._hw.size

    def add(self, key: str, members: list[tuple[str, bytes]]) -> None:
        """Append one sample; ``members`` are ``(extension, bytes)`` in their fixed order."""
        entry = []
        for ext, data in members:
            name = f"{key}.{ext}"
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            header_at = self._hw.size
            self._tar.addfile(ti, io.BytesIO(data))
            entry.append((ext, header_at + tarfile.BLOCKSIZE, len(data), name))
        self._index.append(entry)

    def close(self) -> ShardInfo:
        """Finish the tar, write the index, and return what the manifest records."""
        if self.info is not None:
            return self.info
        self._tar.close()
        self._file.close()
        index_text = formats.dali_index_text(self._index).encode()
        index_path = self.stem.with_suffix(".idx")
        index_path.write_bytes(index_text)
        self.info = ShardInfo(
            file=self.stem.name + ".tar",
            index_file=index_path.name,
            split=self.split,
            samples=len(self._index),
            bytes=self._hw.size,
            sha256=self._hw.sha.hexdigest(),
            index_sha256=hashlib.sha256(index_text).hexdigest(),
        )
        return self.info

    def abort(self) -> None:
        """Close and delete what was written (used when packing fails)."""
        try:
            self._tar.close()
        finally:
            self._file.close()
            for suffix in (".tar", ".idx"):
                self.stem.with_suffix(suffix).unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
