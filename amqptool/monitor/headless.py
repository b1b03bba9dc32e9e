"""``amqptool monitor --metrics HOST:PORT --no-tui``: the Prometheus exporter as a service.

No terminal: the event feed runs on the main thread and folds every batch into a
:class:`MonitorState` (the same fold as the live view, so the same totals); a thread polls the
queue depths (``-Q``, else the queues workers report through ``active_queues``); the
``/metrics`` server runs on its own thread. SIGTERM and SIGINT stop it cleanly (exit 0); a
refused login exits 71 and an unreachable broker keeps being retried, as the live view does.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TextIO

from amqptool.errors import AmqpToolError, AuthenticationError, ExitCode
from amqptool.monitor.actions import BrokerControl, active_queues_action, perform
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus
from amqptool.monitor.metrics import CelerySource, MetricsServer, start_metrics
from amqptool.monitor.queues import QueueDepth, QueueProbe, queues_from_replies
from amqptool.settings import BrokerSettings

__all__ = ["QueuePoller", "run_headless"]


class QueuePoller:
    """Queue depths every ``interval`` seconds on a thread of its own (its own connection)."""

    def __init__(
        self,
        settings: BrokerSettings,
        queues: tuple[str, ...],
        *,
        interval: float = 5.0,
        discovery_interval: float = 30.0,
    ) -> None:
        self.settings = settings
        self.fixed = queues
        self.names: list[str] = list(queues)
        self.depths: list[QueueDepth] = []
        self.interval = interval
        self.discovery_interval = discovery_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-poller", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        control = BrokerControl(self.settings)
        probe: QueueProbe | None = None
        next_discovery = 0.0
        try:
            while not self._stop.is_set():
                if not self.fixed and time.monotonic() >= next_discovery:
                    found = queues_from_replies(perform(control, active_queues_action()).replies)
                    if found:
                        self.names = sorted(set(self.names) | set(found))
                    next_discovery = time.monotonic() + (
                        self.discovery_interval if found else self.interval
                    )
                try:
                    probe = probe or QueueProbe(self.settings, name="amqptool exporter queues")
                    self.depths = probe.probe(list(self.names))
                except AmqpToolError:
                    if probe is not None:
                        probe.close()
                    probe = None
                self._stop.wait(self.interval)
        finally:
            if probe is not None:
                probe.close()


def run_headless(
    settings: BrokerSettings,
    listen: tuple[str, int],
    *,
    err: TextIO,
    queues: tuple[str, ...] = (),
    state: MonitorState | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve ``/metrics`` from the event stream until stopped; returns the exit code."""
    state = state or MonitorState(max_tasks=1000)
    poller = QueuePoller(settings, queues).start()
    server: MetricsServer = start_metrics(
        CelerySource(lambda: state, lambda: poller.depths), listen
    )
    err.write(f"amqptool monitor: serving {server.url} (Ctrl-C stops)\n")
    err.flush()
    last_expire = 0.0

    def on_batch(batch: FeedBatch) -> None:
        nonlocal last_expire
        now = time.time()
        state.apply_many(batch.events, now)
        if now - last_expire > 1.0:
            state.expire(now)
            last_expire = now

    def on_status(status: FeedStatus) -> None:
        if status.state in ("disconnected", "failed"):
            err.write(f"amqptool monitor: {status.state}: {status.detail}\n")
            err.flush()

    feed = EventFeed(settings, on_batch, on_status)
    watcher: threading.Thread | None = None
    if stop is not None:  # a caller's stop flag (tests, embedding)
        flag = stop

        def watch() -> None:
            flag.wait()
            feed.stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    previous = _on_signals(feed)
    try:
        feed.run()
        return int(ExitCode.OK)
    except AuthenticationError as exc:
        err.write(f"error: {exc.user_line()}\n")
        return int(exc.exit_code)
    finally:
        _restore_signals(previous)
        feed.stop()
        poller.stop()
        server.close()


_Handler = signal.Handlers | int | None | object


def _on_signals(feed: EventFeed) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        feed.stop()

    previous: dict[int, _Handler] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]  # what signal.signal gave back
