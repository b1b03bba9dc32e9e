"""Helpers for fault drills: where is a client connected, is a queue consumed, fail a broker.

Used by the failover test now and by the phase-2 drills (broker restart with worker, monitor
and shell; load with crashes). The main broker is never stopped: the second node
(:mod:`tests.brokers`) is the one that goes away.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from amqptool.errors import AmqpToolError
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests import harness
from tests.brokers import SecondBroker, failover_url

T = TypeVar("T")

__all__ = ["FailoverDrill", "LiveMonitor", "ShellPipe", "consumer_count", "main_connections"]


def main_connections(vhost: str) -> list[tuple[str, str]]:
    """``(pid, connection_name)`` of the client connections to ``vhost`` on the main broker."""
    out = harness.rabbitmqctl(
        "list_connections", "pid", "vhost", "client_properties", "--no-table-headers"
    )
    rows: list[tuple[str, str]] = []
    for line in out.splitlines():
        pid, _, rest = line.partition("\t")
        conn_vhost, _, props = rest.partition("\t")
        if conn_vhost != vhost:
            continue
        marker = '{"connection_name","'
        start = props.find(marker)
        name = (
            props[start + len(marker) : props.find('"', start + len(marker))] if start >= 0 else ""
        )
        rows.append((pid, name))
    return rows


def consumer_count(url: str, queue: str) -> int:
    """How many consumers ``queue`` has (0 when it does not exist or the broker is away)."""
    try:
        with Connection(BrokerSettings.from_url(url, environ={}), name="fault-probe") as conn:
            return conn.channel().queue_declare(queue, passive=True).consumer_count
    except AmqpToolError:
        return 0


@dataclass
class FailoverDrill:
    """A client given ``-b "<second node>;<main vhost>"``, and where it is connected now."""

    broker_b: SecondBroker
    main_vhost: str
    b_vhost: str = "/"

    @property
    def b_url(self) -> str:
        return self.broker_b.url(self.b_vhost)

    @property
    def main_url(self) -> str:
        return harness.url_for(self.main_vhost)

    def url(self) -> str:
        """The failover list: the second node first, the main broker after it."""
        return failover_url(self.b_url, self.main_url)

    def on_second_node(self, connection_name: str) -> bool:
        with contextlib.suppress(RuntimeError):  # the node's app may be stopped
            return any(name == connection_name for _, name in self.broker_b.connections())
        return False

    def on_main(self, connection_name: str) -> bool:
        return any(name == connection_name for _, name in main_connections(self.main_vhost))

    def wait_on_second_node(self, connection_name: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: self.on_second_node(connection_name),
            timeout=timeout,
            interval=0.2,
            message=f"{connection_name!r} to connect to the second node",
        )

    def wait_on_main(self, connection_name: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: self.on_main(connection_name),
            timeout=timeout,
            interval=0.2,
            message=f"{connection_name!r} to fail over to the main broker",
        )

    def wait_consuming(self, url: str, queue: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: consumer_count(url, queue) > 0,
            timeout=timeout,
            interval=0.2,
            message=f"a consumer on {queue!r}",
        )


class LiveMonitor:
    """The monitor's engine in-process: its event feed on a thread, folded into its state.

    The same wiring as ``amqptool monitor`` (``MonitorApp.ingest``): each batch goes through
    ``MonitorState.apply_many`` and ``note_malformed``; the feed reconnects by itself.
    """

    def __init__(self, url: str, **feed_options: Any) -> None:
        self.state = MonitorState()
        self.statuses: list[FeedStatus] = []
        self.lock = threading.Lock()
        feed_options.setdefault("retry_interval", 0.2)
        feed_options.setdefault("retry_max", 1.0)
        self.feed = EventFeed(
            BrokerSettings.from_url(url, environ={}),
            self._on_batch,
            self._on_status,
            **feed_options,
        )
        self._thread = threading.Thread(target=self.feed.run, name="live-monitor", daemon=True)

    def _on_batch(self, batch: FeedBatch) -> None:
        with self.lock:
            self.state.apply_many(batch.events, time.time())
            if batch.malformed:
                self.state.note_malformed(batch.malformed)

    def _on_status(self, status: FeedStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    def read(self, fn: Callable[[MonitorState], T]) -> T:
        """Call ``fn(state)`` under the lock (the feed thread writes the state)."""
        with self.lock:
            return fn(self.state)

    def task_state(self, task_id: str) -> str | None:
        with self.lock:
            task = self.state.tasks.get(task_id)
            return None if task is None else task.state

    def states(self) -> list[str]:
        with self.lock:
            return [s.state for s in self.statuses]

    def start(self) -> LiveMonitor:
        self._thread.start()
        harness.wait_until(
            lambda: self.feed.status.connected, timeout=20, message="the monitor feed to connect"
        )
        return self

    def close(self) -> None:
        self.feed.stop()
        self._thread.join(10)

    def __enter__(self) -> LiveMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class ShellPipe:
    """``amqptool shell --json`` fed one line at a time through a pipe (batch mode on stdin).

    :meth:`run` writes a line and returns the JSON document the shell printed for it; the
    shell's stderr (connection notices, errors) goes to a file read by :meth:`stderr`.
    """

    def __init__(self, url: str, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.err_path = workdir / f"shell-{os.getpid()}-{id(self)}.stderr"
        self.env = dict(env or os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(harness.ROOT), self.env.get("PYTHONPATH")])
        )
        self.env["PYTHONUNBUFFERED"] = "1"
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> ShellPipe:
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amqptool", "shell", "--json", "-b", self.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                env=self.env,
                cwd=harness.ROOT,
            )
        threading.Thread(target=self._read, name="shell-stdout", daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, line: str, timeout: float = 30.0) -> dict[str, Any]:
        """Send one command; the JSON document the shell answered with."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        try:
            out = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the shell did not answer {line!r}:\n{self.stderr()}") from None
        if out is None:
            raise AssertionError(f"the shell exited after {line!r}:\n{self.stderr()}")
        doc: dict[str, Any] = json.loads(out)
        return doc

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def close(self, timeout: float = 20.0) -> int:
        """End of input: the shell exits; returns its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise

    def __enter__(self) -> ShellPipe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.close()
