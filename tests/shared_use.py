"""Test brokers shared by the pytest sessions of one machine: file locks, a user registry.

Used by the second node (:mod:`tests.brokers`) and the three-node cluster (:mod:`tests.cluster`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

__all__ = ["SharedUse", "file_lock", "pid_alive"]


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 300.0) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, shared by every process on this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not lock {path} within {timeout}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedUse:
    """Test brokers shared by the pytest sessions of one machine, under file locks in ``base``.

    Each session registers itself in ``users/``; the first boots the broker (:meth:`start`),
    the last to leave stops it (:meth:`stop`); a test holds ``use.lock`` while it uses it
    (:meth:`exclusive_use`), so a test that stops a node never pulls it from under another
    session's test. Subclasses give ``base``, ``start``, ``stop`` and ``make_usable``.
    """

    base: Path

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def make_usable(self) -> None:
        """Bring back what a test that died half-way may have left stopped."""

    def acquire(self) -> Self:
        """Register this process as a user and make sure the broker runs."""
        with file_lock(self.base / "state.lock"):
            users = self.base / "users"
            users.mkdir(parents=True, exist_ok=True)
            (users / str(os.getpid())).write_text("")
            self.start()
        return self

    def release(self) -> None:
        """Unregister; the last live user stops the broker."""
        with file_lock(self.base / "state.lock"):
            users = self.base / "users"
            with contextlib.suppress(FileNotFoundError):
                (users / str(os.getpid())).unlink()
            alive = []
            for entry in users.iterdir() if users.exists() else []:
                if entry.name.isdigit() and pid_alive(int(entry.name)):
                    alive.append(entry)
                else:
                    entry.unlink(missing_ok=True)  # a session that died without leaving
            if not alive:
                self.stop()

    def stop_unless_used(self, *, force: bool = False) -> list[str]:
        """Stop the broker by hand (a script), unless live pytest sessions use it (their pids
        are returned and nothing is stopped) or ``force``."""
        users = (self.base / "users").glob("*")
        live = [p.name for p in users if p.name.isdigit() and pid_alive(int(p.name))]
        if live and not force:
            return live
        with file_lock(self.base / "state.lock"):
            self.stop()
        return []

    @contextlib.contextmanager
    def exclusive_use(self, timeout: float = 300.0) -> Iterator[Self]:
        """Hold the broker for one test: nobody else stops it meanwhile."""
        with file_lock(self.base / "use.lock", timeout=timeout):
            self.make_usable()
            yield self
