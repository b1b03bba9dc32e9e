"""Length-prefixed pickle frames on raw pipe file descriptors (the prefork pool's two pipes).

``multiprocessing.Connection`` reads every message with two system calls (its 4-byte header,
then its body) behind several layers of Python checks, and wakes its reader once per message.
Here a frame is a 4-byte big-endian length and one pickle (a list of jobs, or of reports); a
reader takes whatever the pipe holds in one ``os.read`` and splits it into frames, so reports
that piled up while the broker thread was busy cost one read, not two per report.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
from typing import Any

__all__ = ["FrameReader", "write_frame"]

log = logging.getLogger("worker.pool")

_HEADER = 4
_CHUNK = 1 << 16


def write_frame(fd: int, items: list[Any]) -> None:
    """Write one frame (blocking): ``items`` pickled, behind its length."""
    body = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
    data = memoryview(len(body).to_bytes(_HEADER, "big") + body)
    while data:  # a pipe takes a big frame in parts; a signal may cut a write short
        data = data[os.write(fd, data) :]


class FrameReader:
    """Frames read from ``fd``: :meth:`read` returns what one ``os.read`` completed."""

    __slots__ = ("buf", "eof", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def pending(self) -> bool:
        """A whole frame is buffered already (:meth:`frames` returns it without reading)."""
        buf = self.buf
        return len(buf) >= _HEADER and len(buf) >= _HEADER + int.from_bytes(buf[:_HEADER], "big")

    def read(self) -> list[Any]:
        """One ``os.read`` (blocks on a blocking fd); the items of every frame it completed.
        Sets :attr:`eof` at end of file; a non-blocking fd with nothing to read gives ``[]``."""
        try:
            chunk = os.read(self.fd, _CHUNK)
        except BlockingIOError:
            return []
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return []
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        return self.frames()

    def drain(self) -> list[Any]:
        """Everything left on a non-blocking fd (a dead child's last reports): reads until end
        of file or until nothing more is there."""
        items: list[Any] = []
        while not self.eof:
            try:
                chunk = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    break
                continue
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
            items.extend(self.frames())
        return items

    def frames(self) -> list[Any]:
        """The items of the whole frames buffered so far (none read from the pipe)."""
        buf = self.buf
        items: list[Any] = []
        start = 0
        end = len(buf)
        while end - start >= _HEADER:
            size = int.from_bytes(buf[start : start + _HEADER], "big")
            stop = start + _HEADER + size
            if stop > end:
                break
            try:
                items.extend(pickle.loads(buf[start + _HEADER : stop]))
            except Exception:  # a frame that does not unpickle: its jobs are reported lost later
                log.exception("pool: unreadable message on pipe %s", self.fd)
            start = stop
        if start:
            del buf[:start]
        return items
