"""What the file connector may touch: regular files of a capped size, inside the allowed roots."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from core.errors import InputError


def confined(path: Path, roots: Sequence[Path], what: str) -> Path:
    """`path` with every symlink and `..` resolved, when that lies inside one of `roots`.

    Args:
        path: an absolute path (it need not exist yet).
        roots: the allowed directories, already resolved.
        what: the config field, for the message.

    Raises:
        ValueError: naming the field and the allowed directories.
    """
    real = path.resolve()
    if any(real == root or real.is_relative_to(root) for root in roots):
        return real
    allowed = ", ".join(str(r) for r in roots)
    raise ValueError(f"{what} must be inside {allowed} (the directories set by "
                     "LEARNLOOP_FILE_ROOTS); symlinks are followed")


def _kind(mode: int) -> str | None:
    """Why a file of this mode cannot be read as a table (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a CSV or XLSX file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1_000_000 else f"{n / 1e6:,.1f} MB"


def read_regular(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The bytes and modification time of a regular file no larger than `max_bytes`.

    The file is checked before it is opened, opened without blocking (a FIFO swapped in would
    otherwise hang) and checked again on the open descriptor, and never read past the cap.

    Raises:
        InputError: when it is missing, not a regular file, too large or unreadable.
    """
    try:
        why = _kind(os.stat(path).st_mode)
        if why:
            raise InputError(f"{path}: {why}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        why = _kind(info.st_mode)
        if why:
            raise InputError(f"{path}: {why}")
        if info.st_size > max_bytes:
            raise InputError(f"{path}: {_size(info.st_size)} is larger than the "
                             f"{_size(max_bytes)} a file may have (LEARNLOOP_FILE_MAX_MB)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InputError(f"{path}: grew past the {_size(max_bytes)} a file may have "
                             "(LEARNLOOP_FILE_MAX_MB) while being read")
        return data, info.st_mtime
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
