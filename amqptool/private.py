"""Files that hold task data or message bodies are private to their owner (mode 0600).

Monitor ``--state``, the shell history, the worker's ``--statedb`` and the beat schedule file
keep task arguments, results or message bodies. :func:`ensure_private` creates such a file
0600 whatever the umask, and tightens an existing one that group or others could read or
write (the caller logs the returned note). :func:`atomic_write` replaces a file's content
atomically with a 0600 file. A file we cannot tighten (owned by someone else) is an error.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO

from amqptool.errors import UsageError

__all__ = ["PRIVATE_MODE", "atomic_write", "create_private", "ensure_private"]

PRIVATE_MODE = 0o600


def ensure_private(
    path: str | Path, what: str, *, companions: tuple[str, ...] = (), create: bool = True
) -> str:
    """Create *path* 0600 if missing (unless ``create=False``), else tighten it to 0600 when it
    is wider.

    *companions* are suffixes of side files that hold the same data (SQLite's ``-wal``,
    ``-shm``); existing ones are tightened too. Returns a note for the log when a mode was
    changed, else ``""``. Raises :class:`UsageError` naming *what* when that fails.
    """
    path = Path(path)
    notes = [_tighten(path, what, create=create)]
    notes += [_tighten(Path(str(path) + suffix), what, create=False) for suffix in companions]
    return "; ".join(f"{what} {n}" for n in notes if n)


def _tighten(path: Path, what: str, *, create: bool) -> str:
    """Open (creating 0600 when ``create``) and tighten one file; "" when missing or fine."""
    try:
        fd = os.open(path, (os.O_CREAT if create else 0) | os.O_RDONLY | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if create:
            raise UsageError(f"{what} {path}: no such directory") from None
        return ""
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot open: {exc.strerror or exc}") from None
    try:
        return _tighten_fd(fd, path)
    finally:
        os.close(fd)


def _tighten_fd(fd: int, path: Path) -> str:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if not mode & 0o077:
        return ""
    try:
        os.fchmod(fd, mode & 0o700 | PRIVATE_MODE)
    except OSError as exc:
        raise UsageError(
            f"{path} is readable by others (mode {mode:o}) and cannot be made private: "
            f"{exc.strerror or exc}"
        ) from None
    return f"{path}: mode {mode:o} was wider than {PRIVATE_MODE:o}; tightened"


def create_private(path: str | Path) -> IO[str]:
    """A new text file, mode 0600, opened for writing; FileExistsError when it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE)
    return os.fdopen(fd, "w", encoding="utf-8")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0600) so a reader sees the old or the new file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where we can
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
