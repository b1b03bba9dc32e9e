"""Wire the real parts together: the broker feed, control client, queue probe, store, app."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from amqptool.errors import ExitCode
from amqptool.monitor.actions import BrokerControl
from amqptool.monitor.app import MonitorApp, MonitorOptions
from amqptool.monitor.core.history import BUCKET_SECONDS
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus
from amqptool.monitor.queues import QueueProbe
from amqptool.monitor.store import TaskStore, record_of
from amqptool.settings import BrokerSettings

__all__ = ["build_app", "run_app"]


def build_app(
    settings: BrokerSettings,
    *,
    max_tasks: int = 10_000,
    forget_offline: float = 3600.0,
    queues: tuple[str, ...] = (),
    store: TaskStore | None = None,
    max_bytes: int = 64 * 1024 * 1024,
    field_limit: int = 4096,
) -> MonitorApp:
    """The monitor app on the real broker (the store, if any, is loaded into the state)."""
    state = MonitorState(
        max_tasks=max_tasks,
        max_bytes=max_bytes,
        field_limit=field_limit,
        forget_offline=forget_offline,
        track_changes=store is not None,
    )
    if store is not None:
        state.restore(store.load_recent(max_tasks))
        state.drain_changed()
        window = state.history.window * BUCKET_SECONDS
        state.history.load(store.load_history(int(time.time()) - window))

    def feed_factory(
        on_batch: Callable[[FeedBatch], None], on_status: Callable[[FeedStatus], None]
    ) -> EventFeed:
        return EventFeed(settings, on_batch, on_status)

    return MonitorApp(
        state,
        options=MonitorOptions(broker=settings.redacted(), queues=queues),
        feed_factory=feed_factory,
        control=BrokerControl(settings),
        queue_probe_factory=lambda: QueueProbe(settings),
        store=store,
    )


def run_app(
    settings: BrokerSettings,
    *,
    max_tasks: int = 10_000,
    forget_offline: float = 3600.0,
    queues: tuple[str, ...] = (),
    state_file: str | None = None,
    max_bytes: int = 64 * 1024 * 1024,
    field_limit: int = 4096,
    err: TextIO | None = None,
    metrics: tuple[str, int] | None = None,
) -> int:
    """Run the app; a feed that failed (a refused login) is an ``error:`` line and its code."""
    store = TaskStore(state_file) if state_file else None
    if store is not None and store.mode_note:
        print(f"warning: {store.mode_note}", file=sys.stderr, flush=True)
    try:
        app = build_app(
            settings,
            max_tasks=max_tasks,
            forget_offline=forget_offline,
            queues=queues,
            store=store,
            max_bytes=max_bytes,
            field_limit=field_limit,
        )
        server = None
        if metrics is not None:
            from amqptool.monitor.metrics import CelerySource, start_metrics

            server = start_metrics(
                CelerySource(lambda: app.state, lambda: app.queue_depths), metrics
            )
        try:
            app.run()
        finally:
            if server is not None:
                server.close()
        if store is not None:  # what changed since the last periodic save
            changed = app.state.drain_changed()
            store.save(record_of(app.state.tasks[u]) for u in changed if u in app.state.tasks)
            history = app.state.history
            store.save_history(history.drain(), int(time.time()) - history.window * BUCKET_SECONDS)
    finally:
        if store is not None:
            store.close()
    status = app.feed_status
    if status.state == "failed" and err is not None:
        err.write(f"error: {status.detail}\n")
    return int(app.return_code or ExitCode.OK)
