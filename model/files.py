"""Saving files safely: atomically (temporary file, then rename) and never over an existing file
unless the caller says so.

A failure (read-only folder, full disk, path too long) raises ``SaveError`` with a plain message
and leaves no partial file behind; whatever was being saved is still in memory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: The process's file-creation mask, read once at import (reading it means setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)
#: The permissions of a saved file: those of any file the user creates (0644 with the usual
#: umask), not the owner-only 0600 of the temporary file it is written as.
FILE_MODE = 0o666 & ~_UMASK


class SaveError(OSError):
    """A save that did not happen, with a message for people."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def readable(text: str) -> str:
    """``text`` with the bytes of a file name that are no UTF-8 (which Python keeps as lone
    surrogates, and no UTF-8 file can hold) as U+FFFD '�'."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def text_bytes(text: str) -> bytes:
    """``text`` as UTF-8 for people to read (``readable``), rather than failing the save."""
    return readable(text).encode("utf-8")


def _reason(exc: OSError) -> str:
    return _reason_text(exc.errno, exc.strerror or str(exc))


def _reason_text(code: int | None, fallback: str = "") -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the folder is on a read-only file system",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.ENAMETOOLONG: "the file name or path is too long",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EEXIST: "the file already exists",
        errno.EISDIR: "a folder of that name is there",
    }
    return reasons.get(code, fallback)


def write_atomic(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None] | bytes,
    *,
    overwrite: bool = False,
    temp_dir: str | os.PathLike | None = None,
) -> Path:
    """Write a file so that it either appears complete or not at all.

    Parameters
    ----------
    path : destination.
    write : the bytes, or a function writing them to a binary file object.
    overwrite : replace an existing file; when False an existing file raises ``SaveError``.
    temp_dir : where the file is written before it is moved into place (default: beside
        ``path``); on the same file system as ``path``.

    Returns
    -------
    The destination path.
    """
    return write_all_atomic([(path, write)], overwrite=overwrite, temp_dir=temp_dir)[0]


def write_all_atomic(
    files: Sequence[tuple[str | os.PathLike, Callable[[BinaryIO], None] | bytes]],
    *,
    overwrite: bool = False,
    temp_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write several files that belong together (a snapshot's picture, arrays and record) as
    ``write_atomic`` writes one, and all or none: every file is written in full before any is
    moved into place, and files being replaced are first moved aside, to be put back if any
    new one cannot take its place (a full disk, a file held open on Windows). A failure leaves
    the files that were there as they were, and none of the new ones; a folder where a file
    should go refuses the save before anything is written.

    ``files`` holds (destination, bytes or writing function) pairs. Returns the destinations.
    """
    targets = [Path(path) for path, _ in files]
    if not overwrite:
        clashing = existing(targets)
        if clashing:
            raise SaveError(errno.EEXIST, f"Not saved: {clashing[0]} already exists")
    for target in targets:
        if target.is_dir():  # (never moved aside, let alone deleted)
            raise SaveError(errno.EISDIR, f"Could not save {target}: {_reason_text(errno.EISDIR)}")
    temporaries: list[str] = []
    aside: list[tuple[Path, str]] = []  # (target, where its old file waits meanwhile)
    moved: list[Path] = []
    target = targets[0] if targets else Path()
    try:
        for target, (_, write) in zip(targets, files, strict=True):
            temporaries.append(_write_temporary(target, write, temp_dir))
        if overwrite and len(targets) > 1:
            for target in targets:
                if os.path.lexists(target):
                    aside.append((target, _move_aside(target)))
        for target, tmp_name in zip(targets, temporaries, strict=True):
            if overwrite:
                os.replace(tmp_name, target)
            else:
                _link_without_overwrite(tmp_name, target)
            moved.append(target)
    except OSError as exc:
        for path in moved:  # (new files that the others could not join)
            with contextlib.suppress(OSError):
                path.unlink()
        for old, parked in aside:
            with contextlib.suppress(OSError):
                os.replace(parked, old)
        aside = []
        raise SaveError(exc.errno, f"Could not save {target}: {_reason(exc)}") from exc
    finally:
        for tmp_name in temporaries:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        for _old, parked in aside:  # (replaced: the old files go)
            with contextlib.suppress(OSError):
                os.unlink(parked)
    return targets


def _move_aside(target: Path) -> str:
    """Move ``target`` to a new hidden name beside it; that name."""
    fd, parked = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".old", dir=target.parent)
    os.close(fd)
    try:
        os.replace(target, parked)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(parked)
        raise
    return parked


def _write_temporary(
    target: Path, write: Callable[[BinaryIO], None] | bytes, temp_dir: str | os.PathLike | None
) -> str:
    """A complete, synced temporary file of ``write`` beside ``target`` (or in ``temp_dir``);
    its name."""
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name[:40]}.", suffix=".tmp", dir=temp_dir or target.parent
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):  # (not on Windows before Python 3.13, nor needed there)
                # A file system without Unix permissions (FAT, some network shares) may refuse
                # it; the file is saved as it is then.
                with contextlib.suppress(OSError):
                    os.fchmod(handle.fileno(), FILE_MODE)
            if isinstance(write, (bytes, bytearray, memoryview)):
                handle.write(write)
            else:
                write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return tmp_name


def _link_without_overwrite(tmp_name: str, target: Path) -> None:
    """Move the finished temporary file into place, failing if ``target`` appeared meanwhile."""
    try:
        os.link(tmp_name, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
        # File systems without hard links: a rename, after a last existence check.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.replace(tmp_name, target)
        return
    os.unlink(tmp_name)


def make_folder(path: str | os.PathLike) -> Path:
    """Create a new folder (its parent must exist); ``SaveError`` with the reason otherwise."""
    folder = Path(path)
    try:
        folder.mkdir()
    except OSError as exc:
        raise SaveError(exc.errno, f"Could not create the folder {folder}: {_reason(exc)}") from exc
    return folder


def existing(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Those of ``paths`` that already exist.

    A path that cannot even be looked up (too long, a file used as a folder, no permission)
    raises ``SaveError`` with the reason, since nothing can be saved there either.
    """
    found = []
    for p in paths:
        try:
            os.stat(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SaveError(exc.errno, f"Could not save {p}: {_reason(exc)}") from exc
        found.append(Path(p))
    return found


def stem_of(chosen: str | os.PathLike, suffixes: Iterable[str]) -> str:
    """The stem of a group of files <stem><suffix> saved where the user chose ``chosen``: its
    name without its suffix when that is one of ``suffixes`` (any case), else the whole name."""
    chosen = Path(chosen)
    return chosen.stem if chosen.suffix.lower() in tuple(suffixes) else chosen.name


def free_stem(directory: str | os.PathLike, stem: str, suffixes: Iterable[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... : the first for which no ``stem + suffix`` exists
    in ``directory``."""
    directory = Path(directory)
    suffixes = list(suffixes)
    candidate, n = stem, 1
    while existing(directory / f"{candidate}{s}" for s in suffixes):
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an .npz file (no pickles)."""
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()
