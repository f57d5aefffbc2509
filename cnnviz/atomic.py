"""Replace several files together: a save that fails or is interrupted leaves all old files.

A :class:`FileGroup` stages each new file under a temporary name in the target's own folder
(so the final move is a rename on one file system), then :meth:`FileGroup.commit` moves them
into place one after the other with Ctrl-C deferred. Should a move fail, the ones already
made are rolled back from hard-linked backups, so an interrupted save leaves the old files
as they were. Temporaries and backups are removed in every case.

Two renames are never one atomic step: a reader that opens the files in between may still
see one new and one old file. Checkpoints guard against that by recording the weights'
sha256 in the description (see :func:`cnnviz.checkpoints.load_checkpoint`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from pathlib import Path
from typing import Iterator


def fault_hook(stage: str) -> None:
    """Called at each step of :meth:`FileGroup.commit` (``"staged"`` once the temporaries are
    written, ``"moved:<name>"`` after each move); does nothing. Tests replace it to simulate an
    interruption at that point."""


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (``SIGINT``) for the duration of the block and deliver it afterwards,
    to whatever handler was there before. Python runs signal handlers in the main thread only,
    so elsewhere there is nothing to defer and the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed outside Python: it cannot be put back, leave it
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def _temporary(target: Path, kind: str) -> Path:
    """A hidden, unique name beside ``target`` (``.<name>.<kind>-<hex>``)."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:12]}")


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush ``path`` to disk (a folder: its entries); skipped where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. folders on Windows: nothing more can be done
    finally:
        os.close(fd)


def _backup(target: Path) -> Path:
    """A second name for ``target``'s current contents: a hard link, or a copy where the file
    system has none."""
    backup = _temporary(target, "old")
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


class FileGroup:
    """New versions of several files, moved into place together.

    ::

        with FileGroup() as group:
            save_file(state, group.stage(weights))   # write to the temporary name given
            group.remove(old_extra)                  # this file goes (if it exists)
            group.commit()

    Leaving the block without :meth:`commit` (an exception, Ctrl-C) discards the temporaries
    and leaves every target as it was.
    """

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path | None]] = []

    def stage(self, target: str | os.PathLike) -> Path:
        """The temporary path to write ``target``'s new contents to."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(target, "tmp")
        self._moves.append((target, tmp))
        return tmp

    def remove(self, target: str | os.PathLike) -> None:
        """Delete ``target`` (if present) as part of the commit."""
        self._moves.append((Path(target), None))

    def commit(self) -> None:
        """Move every staged file into place (and remove those marked), with Ctrl-C deferred;
        on any failure undo the moves already made and re-raise."""
        for _, tmp in self._moves:
            if tmp is not None:
                _fsync(tmp)
        fault_hook("staged")
        with sigint_deferred():
            backups: dict[Path, Path] = {}
            done: list[Path] = []
            try:
                for target, _ in self._moves:
                    if target.exists():
                        backups[target] = _backup(target)
                for target, tmp in self._moves:
                    if tmp is None:
                        target.unlink(missing_ok=True)
                    else:
                        os.replace(tmp, target)
                    done.append(target)
                    fault_hook(f"moved:{target.name}")
            except BaseException:
                for target in reversed(done):
                    if target in backups:
                        os.replace(backups.pop(target), target)
                    else:
                        target.unlink(missing_ok=True)
                raise
            finally:
                for b in backups.values():
                    b.unlink(missing_ok=True)
            for folder in {t.parent for t, _ in self._moves}:
                _fsync(folder, directory=True)

    def __enter__(self) -> "FileGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        for _, tmp in self._moves:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
