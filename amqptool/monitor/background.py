"""The monitor's background work: the event feed, the queue poller and the SQLite store.

A mixin of :class:`~amqptool.monitor.app.MonitorApp`. Each job runs in a thread worker and
reports back with a past-tense message (:mod:`amqptool.monitor.messages`); only the UI thread
touches the :class:`MonitorState` (batches are folded in :meth:`BackgroundWork.ingest`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Protocol

from rich.text import Text
from textual import work
from textual.app import App
from textual.css.query import NoMatches
from textual.widgets import Static

from amqptool.errors import AmqpToolError
from amqptool.monitor.actions import ControlPort, active_queues_action, perform
from amqptool.monitor.core.history import BUCKET_SECONDS
from amqptool.monitor.core.model import Task
from amqptool.monitor.core.query import TaskFilter
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import FeedBatch, FeedStatus
from amqptool.monitor.messages import (
    EventsArrived,
    FeedChanged,
    IngestMore,
    QueuesUpdated,
    StoreMatches,
)
from amqptool.monitor.queues import UNACKED_NOTE, QueueDepth, queues_from_replies
from amqptool.monitor.store import HistoryRow, TaskStore, record_of
from amqptool.monitor.widgets import GridTable

__all__ = [
    "INGEST_CHUNK",
    "BackgroundWork",
    "FeedFactory",
    "FeedLike",
    "MonitorOptions",
    "QueueProbeLike",
]

INGEST_CHUNK = 200  # events folded per message: a key waits for about one chunk


class FeedLike(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


class QueueProbeLike(Protocol):
    def probe(self, names: list[str]) -> list[QueueDepth]: ...

    def close(self) -> None: ...


FeedFactory = Callable[[Callable[[FeedBatch], None], Callable[[FeedStatus], None]], FeedLike]


@dataclass
class MonitorOptions:
    broker: str = "amqp://"  # already redacted
    queues: tuple[str, ...] = ()  # -Q: fixed queue list (else from active_queues)
    refresh_hz: float = 4.0
    queue_interval: float = 2.0
    discovery_interval: float = 30.0
    store_interval: float = 2.0
    tz: tzinfo | None = None


class BackgroundWork(App[int]):
    """Feed, queue poller and store jobs; the app provides the attributes declared here."""

    state: MonitorState
    options: MonitorOptions
    clock: Callable[[], float]
    feed_factory: FeedFactory | None
    control: ControlPort | None
    queue_probe_factory: Callable[[], QueueProbeLike] | None
    store: TaskStore | None
    feed_status: FeedStatus
    queue_names: list[str]
    queue_depths: list[QueueDepth]
    stored_matches: list[Task]
    filter: TaskFilter
    _feed: FeedLike | None
    _stop: threading.Event
    _batches: int
    _pending: deque[dict[str, Any]]
    _more_posted: bool

    def refresh_views(self, now: float | None = None, *, force: bool = False) -> None:
        raise NotImplementedError

    def ingest(self, batch: FeedBatch) -> None:
        """Fold one batch into the state (on the UI thread), at most ``INGEST_CHUNK`` events at
        a time: the rest goes back on the message queue, so a key pressed during a burst is
        handled after one chunk, not after the whole batch."""
        self._pending.extend(batch.events)
        self._fold_some()
        if batch.malformed:
            self.state.note_malformed(batch.malformed)
        self._batches += 1

    def _fold_some(self) -> None:
        """Fold up to ``INGEST_CHUNK`` pending events, in arrival order; ask for more later."""
        pending = self._pending
        chunk = [pending.popleft() for _ in range(min(INGEST_CHUNK, len(pending)))]
        self.state.apply_many(chunk, self.clock())
        if pending and not self._more_posted:
            self._more_posted = True
            self.post_message(IngestMore())

    async def on_ingest_more(self, message: IngestMore) -> None:
        # Yield first: the app's loop does not give way while its own queue is non-empty, and a
        # key travels through the focused widget's and the screen's queues, a turn for each.
        for _ in range(4):
            await asyncio.sleep(0)
        self._more_posted = False
        self._fold_some()

    def on_events_arrived(self, message: EventsArrived) -> None:
        self.ingest(message.batch)

    def on_feed_changed(self, message: FeedChanged) -> None:
        previous = self.feed_status
        if previous.state == "failed" and message.status.state == "stopped":
            return  # the header keeps saying why the feed stopped (a refused login)
        self.feed_status = message.status
        if message.status.state == "failed":
            self.notify(
                message.status.detail, title="broker", severity="error", timeout=10, markup=False
            )
        elif message.status.state == "connected" and previous.state == "disconnected":
            self.notify("reconnected to the broker", title="broker", markup=False)
        self.refresh_views()

    @work(thread=True, group="feed", exit_on_error=False)
    def _run_feed(self) -> None:
        assert self.feed_factory is not None

        def on_batch(batch: FeedBatch) -> None:
            self.post_message(EventsArrived(batch))

        def on_status(status: FeedStatus) -> None:
            self.post_message(FeedChanged(status))

        feed = self.feed_factory(on_batch, on_status)
        self._feed = feed
        if self._stop.is_set():
            return
        try:
            feed.run()
        except AmqpToolError:
            pass  # already reported through the status callback
        except Exception as exc:  # the UI keeps running; the header says why
            self.post_message(FeedChanged(FeedStatus("failed", f"{type(exc).__name__}: {exc}")))

    # ------------------------------------------------------------------ queues

    def on_queues_updated(self, message: QueuesUpdated) -> None:
        self.queue_depths = message.depths
        ready = [d.ready for d in message.depths if d.ready is not None]
        if ready:
            self.state.history.depth(sum(ready), self.clock())
        try:
            self.query_one("#queues", GridTable).set_items(message.depths)
            self.query_one("#queues-note", Static).update(Text(message.note or UNACKED_NOTE))
        except NoMatches:
            pass  # arrived while the screen is torn down at exit

    @work(thread=True, group="queues", exit_on_error=False)
    def _poll_queues(self) -> None:
        assert self.queue_probe_factory is not None
        probe: QueueProbeLike | None = None
        next_discovery = 0.0
        try:
            while not self._stop.is_set():
                note = ""
                if not self.options.queues and time.monotonic() >= next_discovery:
                    found = self._discover_queues()
                    if found:
                        self.queue_names = found
                    next_discovery = time.monotonic() + (
                        self.options.discovery_interval if found else 5.0
                    )
                try:
                    if probe is None:
                        probe = self.queue_probe_factory()
                    depths = probe.probe(list(self.queue_names))
                except AmqpToolError as exc:
                    depths, note = [], f"queues: {exc.user_line()}"
                    if probe is not None:
                        probe.close()
                    probe = None
                self.post_message(QueuesUpdated(depths, note))
                self._stop.wait(self.options.queue_interval)
        finally:
            if probe is not None:
                probe.close()

    def _discover_queues(self) -> list[str]:
        if self.control is None:
            return []
        outcome = perform(self.control, active_queues_action())
        return queues_from_replies(outcome.replies)

    # ------------------------------------------------------------------ store

    def save_store(self) -> None:
        """Snapshot changed tasks (UI thread) and write them from a thread worker."""
        if self.store is None:
            return
        changed = self.state.drain_changed()
        records = [record_of(self.state.tasks[u]) for u in changed if u in self.state.tasks]
        history = self.state.history.drain()
        if records or history:
            self._write_store(records, history)

    @work(thread=True, group="store", exit_on_error=False)
    def _write_store(self, records: list[Any], history: list[HistoryRow]) -> None:
        assert self.store is not None
        try:
            self.store.save(records)
            keep = int(self.clock()) - self.state.history.window * BUCKET_SECONDS
            self.store.save_history(history, keep)
        except Exception as exc:  # a full disk must not take the screen down
            self.notify(f"--state: cannot save: {exc}", severity="error", timeout=10, markup=False)

    @work(thread=True, group="search", exclusive=True, exit_on_error=False)
    def _search_store(self, filt: TaskFilter) -> None:
        assert self.store is not None
        try:
            found = self.store.search(filt, limit=2000)
        except Exception as exc:
            self.notify(f"--state: search failed: {exc}", severity="error", markup=False)
            return
        self.post_message(StoreMatches(filt, found))

    def on_store_matches(self, message: StoreMatches) -> None:
        if message.filt == self.filter:
            self.stored_matches = message.tasks
            self.refresh_views()
