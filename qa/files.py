"""Files written whole or not at all, and files read only when they are small regular files.

One place for both, so that every writer of the library (snapshots, CURRENT, caches,
reports) replaces a file the same way: a temporary file beside it, flushed to disk, then
renamed over it. A reader or a crash sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class Unreadable(Exception):
    """A file that is not a small regular file, or cannot be read (reason in the message)."""


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text is written as UTF-8) atomically and durably.

    The temporary file is `.<name>.<pid>.<random>.tmp` in the same folder (a rename is
    atomic only within one file system); it is removed when anything fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of a regular file of at most `cap` bytes; Unreadable for anything else.

    O_NONBLOCK: opening a FIFO never waits for a writer; it is then refused, as are links,
    folders and devices. FileNotFoundError when it is missing."""
    # Here, not at the top: qa.embedding writes through this module and should not import
    # the document parsers.
    from qa.documents.corpus import read_pieces

    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable(f"{Path(path).name} is a symbolic link") from None
        raise Unreadable(f"{Path(path).name} is unreadable ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{Path(path).name} is not a regular file")
        if st.st_size > cap:
            raise Unreadable(f"{Path(path).name} is larger than {cap:,} bytes")
        data = b"".join(read_pieces(fd, cap))
        if len(data) > cap:
            raise Unreadable(f"{Path(path).name} is larger than {cap:,} bytes")
        return data
    except OSError as exc:
        raise Unreadable(f"{Path(path).name} is unreadable ({exc.strerror})") from None
    finally:
        os.close(fd)


def check_regular(path: Path) -> None:
    """Unreadable unless `path` is a regular file (not followed if a link), missing included:
    checked before a file is memory-mapped, where opening a FIFO would block."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise Unreadable(f"{Path(path).name} is unreadable ({exc.strerror})") from None
    if stat.S_ISLNK(mode):
        raise Unreadable(f"{Path(path).name} is a symbolic link")
    if not stat.S_ISREG(mode):
        raise Unreadable(f"{Path(path).name} is not a regular file")
