"""A folder, a zip on disk or a zip held in memory, listed and read the same way, every read
bounded in bytes."""

from __future__ import annotations

import os
import stat
import threading
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from .decoding import MAX_FILE_BYTES, declared_pixels
from .errors import DatasetError, UnreadableImage

_CHUNK = 1 << 20  # a file is read this much at a time, and never past its limit
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # inflated no further than asked per call
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n:,} bytes"


class Container:
    """Read-only view of a folder, a zip file, or an open :class:`zipfile.ZipFile` (an upload
    held in memory): relative POSIX paths -> bytes.

    :meth:`list` leaves out hidden files and folders and ``__MACOSX/``. :meth:`read` returns no
    more than ``max_bytes`` for one file: a zip member that declares more is refused unread, and
    the others are inflated in chunks that stop at the size they declare (a member whose
    directory entry lies is refused, not read to its end). Only stored and deflated members are
    read: bzip2 and LZMA inflate without a bound per call. A zip file on disk may be read from
    several threads.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES,
                 zf: zipfile.ZipFile | None = None):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._shared = zf
        self._local = threading.local()
        self.is_zip = zf is not None or self.path.is_file()
        if zf is None and self.is_zip and not zipfile.is_zipfile(self.path):
            raise DatasetError(f"{self.path} is a file but not a zip archive: pass a folder or a .zip")

    @classmethod
    def from_zipfile(cls, zf: zipfile.ZipFile, name: str, max_bytes: int = MAX_FILE_BYTES) -> "Container":
        """A zip that is already open (e.g. from bytes in memory), called ``name`` in messages."""
        return cls(name, max_bytes, zf)

    def _zip(self) -> zipfile.ZipFile:
        if self._shared is not None:
            return self._shared
        zf = getattr(self._local, "zf", None)
        if zf is None:
            zf = self._local.zf = zipfile.ZipFile(self.path)
        return zf

    def list(self) -> list[tuple[str, int]]:
        """All entries as ``(relative path, size in bytes)``; directories end with ``/`` and have
        size 0; a file that cannot be looked at (e.g. a broken link) has size -1."""
        if self.is_zip:
            return [(i.filename, 0 if i.is_dir() else i.file_size) for i in self._zip().infolist()
                    if not (i.filename.startswith("__MACOSX/") or "/." in "/" + i.filename)]
        out = []
        for root, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(root).relative_to(self.path).as_posix()
            prefix = "" if rel == "." else rel + "/"
            out.extend((prefix + d + "/", 0) for d in dirs)
            for f in sorted(files):
                if not f.startswith("."):
                    try:
                        size = os.path.getsize(os.path.join(root, f))
                    except OSError:
                        size = -1
                    out.append((prefix + f, size))
        return out

    def open(self, rel: str) -> BinaryIO:
        """A binary stream of one file, e.g. to read an image header without the whole file.
        Raises :class:`UnreadableImage` for files over ``max_bytes`` (as declared) or not
        regular files, ``OSError`` for missing ones."""
        if self.is_zip:
            info = self._zip().getinfo(rel)
            if info.file_size > self.max_bytes:
                raise UnreadableImage(f"{_size(info.file_size)}, over the limit of "
                                      f"{_size(self.max_bytes)} for one image")
            if info.compress_type not in _ZIP_METHODS:
                raise UnreadableImage("compressed with a method other than deflate: re-zip it with a "
                                      "standard zip tool")
            try:
                return self._zip().open(info)
            except _ZIP_ERRORS as e:
                raise UnreadableImage(f"cannot be read from the zip ({type(e).__name__}: {e})") from None
        path = self.path / rel
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableImage("not a regular file")
        if st.st_size > self.max_bytes:
            raise UnreadableImage(f"{_size(st.st_size)}, over the limit of {_size(self.max_bytes)} "
                                  "for one image")
        return open(path, "rb")

    def read(self, rel: str) -> bytes:
        """The bytes of one file, at most ``max_bytes``; raises :class:`UnreadableImage` for a
        file over the limit or a damaged zip member, ``OSError`` for a missing file."""
        if self.is_zip:  # open() has refused members that declare more than max_bytes
            limit = self._zip().getinfo(rel).file_size
            past = f"the {_size(limit)} its zip directory declares"
        else:  # a file that grew, or a link to a device
            limit, past = self.max_bytes, f"the limit of {_size(self.max_bytes)} for one image"
        buf = bytearray()
        with self.open(rel) as f:
            try:
                while chunk := f.read(min(_CHUNK, limit + 1 - len(buf))):
                    buf += chunk
                    if len(buf) > limit:
                        raise UnreadableImage(f"holds more than {past}: the file is damaged or made "
                                              "to mislead; save or zip it again")
            except _ZIP_ERRORS as e:
                raise UnreadableImage(f"cannot be read from the zip ({type(e).__name__}: {e})") from None
        return bytes(buf)

    def declared_pixels(self, rel: str, max_pixels: int | None = None) -> int:
        """``width * height`` from one image's header (0 for files that will not be decoded:
        unreadable, or over a limit); see :func:`~cnnviz.data.decoding.declared_pixels`."""
        try:
            with self.open(rel) as f:
                return declared_pixels(f, max_pixels)
        except (OSError, UnreadableImage, *_ZIP_ERRORS):
            return 0
