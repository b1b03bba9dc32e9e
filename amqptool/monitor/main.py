"""Wire the real parts together: the broker feed, control client, queue probe, store, app."""

from __future__ import annotations

import sys
from collections.abc import Callable

from amqptool.errors import ExitCode
from amqptool.monitor.actions import BrokerControl
from amqptool.monitor.app import MonitorApp, MonitorOptions
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus
from amqptool.monitor.queues import QueueProbe
from amqptool.monitor.state import MonitorState
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
) -> MonitorApp:
    """The monitor app on the real broker (the store, if any, is loaded into the state)."""
    state = MonitorState(
        max_tasks=max_tasks, forget_offline=forget_offline, track_changes=store is not None
    )
    if store is not None:
        state.restore(store.load_recent(max_tasks))
        state.drain_changed()

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
) -> int:
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
        )
        app.run()
        if store is not None:  # what changed since the last periodic save
            changed = app.state.drain_changed()
            store.save(record_of(app.state.tasks[u]) for u in changed if u in app.state.tasks)
    finally:
        if store is not None:
            store.close()
    return int(app.return_code or ExitCode.OK)
