"""Running as a service: pid file, log file, and systemd's notify protocol (stdlib only).

- :class:`PidFile`: ``--pidfile``; a file naming a live process is refused (another worker
  runs), a stale one is replaced; removed again when the worker exits.
- :func:`check_parent_dir`: ``--logfile``/``--pidfile``/``--statedb`` in a directory that does
  not exist are refused before anything starts.
- :class:`Notifier`: ``Type=notify`` units. ``READY=1`` once the worker consumes,
  ``STOPPING=1`` on shutdown, ``WATCHDOG=1`` every half ``WatchdogSec`` (``$WATCHDOG_USEC``)
  while the worker's loop is alive. Datagrams go to ``$NOTIFY_SOCKET`` (a path, or ``@name``
  for an abstract socket); without it nothing is sent.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from amqptool.errors import UsageError

__all__ = ["Notifier", "PidFile", "check_parent_dir"]


def check_parent_dir(flag: str, path: str | None) -> None:
    if not path:
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {parent} does not exist")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()

    def acquire(self) -> None:
        check_parent_dir("--pidfile", str(self.path))
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise UsageError(f"--pidfile {self.path}: cannot read it: {exc}") from exc
        if text:
            try:
                pid = int(text)
            except ValueError:
                pid = 0
            if pid > 0 and pid != os.getpid() and _alive(pid):
                raise UsageError(
                    f"--pidfile {self.path}: process {pid} holds it (a worker already runs)",
                    hint="stop that worker first, or give another --pidfile",
                )
        try:
            self.path.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise UsageError(f"--pidfile {self.path}: cannot write it: {exc}") from exc

    def release(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if int(self.path.read_text().strip()) == os.getpid():
                self.path.unlink()


class Notifier:
    """systemd's ``sd_notify``, for a worker run by a ``Type=notify`` unit."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message.encode(), self.address)
            except OSError:
                return False
        return True

    def ready(self, alive: Callable[[], bool]) -> None:
        """``READY=1``, and the watchdog pings while ``alive()`` says so."""
        self.send(f"READY=1\nMAINPID={os.getpid()}")
        if self.watchdog is None or not self.address:
            return

        def ping() -> None:
            while not self._stop.wait(self.watchdog / 2 if self.watchdog else 1.0):
                if alive():
                    self.send("WATCHDOG=1")

        self._thread = threading.Thread(target=ping, name="sd-watchdog", daemon=True)
        self._thread.start()

    def stopping(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.send("STOPPING=1")
