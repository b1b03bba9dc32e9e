"""The monitor's event-state model: a pure fold of Celery events with explicit time.

``MonitorState.apply(event, now)`` folds one event (a decoded body, docs/protocol.md §3) into the
workers and tasks it knows; ``now`` is the local receipt time and the model never reads a clock.
It imports nothing from pika or textual, so it is tested with a fake clock and benchmarked alone.

Semantics (copied in meaning from ``celery.events.state``, done without hidden clock reads):

* **Workers** are online while ``now < last heartbeat + 2 * freq`` (local receipt times) and not
  marked by ``worker-offline``. Task events count as heartbeats. A worker offline for longer
  than ``forget_offline`` seconds is forgotten by :meth:`MonitorState.expire`.
* **Tasks** move through PENDING (``task-sent``), RECEIVED, STARTED, SUCCESS, FAILURE, RETRY,
  REVOKED, REJECTED or a custom state (``task-<custom>`` gives ``<CUSTOM>``). Out-of-order and
  duplicate events are settled by *state precedence*: an event whose state logically happens
  before the current one only fills fields that are still empty. States that can loop
  (RETRY, and REJECTED with ``requeue``) are ordered by the Lamport clock instead (by the
  sender's ``timestamp`` when the two events come from different hosts, since unsynchronised
  nodes' clocks are not comparable).
* **History is bounded** (``max_tasks``, default 10 000) and the bound is enforced on every
  insert. The oldest succeeded tasks go first, then the oldest other tasks; failed tasks are
  kept in preference, but they never take more than ``failed_share`` of the bound, so new
  tasks always have room.
* **Throughput**: succeeded and failed tasks per second, in one-second buckets (receipt time)
  over a sliding window, for the header's rates and sparklines.
* **Memory is bounded in bytes too** (``max_bytes``): every string field is cut at
  ``field_limit`` characters with a visible marker, and the text a task holds is counted; past
  ``max_bytes`` tasks are evicted in the same order as above. Every string from an event is made
  safe to draw first (:mod:`amqptool.monitor.core.clean`: control characters become visible).
* **Totals since start** (:class:`~amqptool.monitor.core.totals.Totals`) count every task event by
  kind, name, worker and queue, and never depend on the bounds above. The fold collects them
  (and the throughput/history counts) per batch and hands them on once at the end of
  :meth:`MonitorState.apply_many` / :meth:`MonitorState.apply`: a batch shares one ``now``,
  so it shares the buckets too, and the result is the same as one event at a time.
* Unknown event types and malformed events are counted, never raised.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from math import inf as INF
from math import isfinite
from typing import Any

from amqptool.monitor.core.clean import DEFAULT_FIELD_LIMIT, KEY_LIMIT, clean_key
from amqptool.monitor.core.fields import (
    CUSTOM_PRECEDENCE,
    FIELD_INT,
    FIELD_KEY,
    FIELD_PLAIN,
    FIELD_RUNTIME,
    MAX_EVENT_TYPES,
    PRECEDENCE,
    TASK_BASE_SIZE,
    TASK_SPEC,
    TIMELINE_ENTRY_SIZE,
    TIMELINE_MAX,
    clean_restored,
    custom_fields,
    field_value,
    precedence,
    size_of,
)
from amqptool.monitor.core.history import History
from amqptool.monitor.core.model import (
    FAILURE,
    FINISHED_STATES,
    REJECTED,
    RETRY,
    STATES,
    SUCCESS,
    Task,
    Throughput,
    Worker,
    as_float,
)
from amqptool.monitor.core.totals import CountKey, Totals
from amqptool.monitor.core.workerfold import WorkerFold

__all__ = [
    "FINISHED_STATES",
    "STATES",
    "MonitorState",
    "Task",
    "Throughput",
    "Worker",
    "precedence",
]


class MonitorState(WorkerFold):
    """Workers, tasks and counters, folded from events. Owned by one thread at a time."""

    def __init__(
        self,
        *,
        max_tasks: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        field_limit: int = DEFAULT_FIELD_LIMIT,
        max_workers: int = 5_000,
        forget_offline: float = 3600.0,
        failed_share: float = 0.5,
        throughput_window: int = 600,
        track_changes: bool = False,
    ) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self.field_limit = field_limit
        self.bytes = 0  # approximate text held by the tasks in memory
        self.totals = Totals()
        self.history = History()
        self.max_workers = max_workers
        self.forget_offline = forget_offline
        self.max_failed = max(1, int(max_tasks * failed_share))
        self.tasks: dict[str, Task] = {}
        self.workers: dict[str, Worker] = {}
        self.counts: dict[str, int] = {}
        self.events_by_type: dict[str, int] = {}
        self.throughput = Throughput(throughput_window)
        self.event_count = 0
        self.task_count = 0  # distinct tasks ever seen
        self.unknown_events = 0
        self.malformed = 0
        self.evicted = 0
        # bumped by every change to the tasks, for a cheap "is the task list stale?" check
        # (heartbeats do not bump it: the worker rows and header are redrawn on each tick)
        self.version = 0
        self.track_changes = track_changes
        self.changed: set[str] = set()
        self._seq = 0
        # This batch's bookkeeping, handed to totals/history/throughput by _settle.
        self._pending: dict[CountKey, int] = {}  # events per totals key, first seen first
        self._runtimes: list[tuple[CountKey, float]] = []
        self._ok = 0
        self._failed = 0
        self._ok_runtimes: list[float] = []
        # Eviction order per tier: 0 succeeded, 1 everything else, 2 failed (oldest first).
        self._tiers: tuple[OrderedDict[str, None], ...] = (
            OrderedDict(),
            OrderedDict(),
            OrderedDict(),
        )

    # ------------------------------------------------------------------ folding

    def apply_many(self, events: Iterable[Mapping[str, Any]], now: float) -> int:
        """Fold a batch of events received at ``now``; returns how many were applied."""
        by_type = self.events_by_type
        task_event = self._task_event
        n = 0
        typed = 0  # events with a text type (added to event_count once, at the end)
        try:
            for event in events:
                n += 1
                try:
                    etype = event["type"]
                except (KeyError, TypeError):
                    self.malformed += 1
                    continue
                if etype.__class__ is not str:
                    self.malformed += 1
                    continue
                typed += 1
                seen = by_type.get(etype)
                if seen is None:
                    etype = clean_key(etype)
                    if len(by_type) >= MAX_EVENT_TYPES:
                        self.unknown_events += 1
                        continue
                    seen = by_type.get(etype, 0)
                by_type[etype] = seen + 1
                if etype.startswith("task-"):
                    task_event(etype, event, now)
                elif etype.startswith("worker-"):
                    self._worker_event(etype, event, now)
                else:
                    self.unknown_events += 1
        finally:
            self.event_count += typed
            self._settle(now)
        return n

    def note_malformed(self, count: int = 1) -> None:
        """Count bodies that never became events (undecodable messages)."""
        self.malformed += count

    def apply(self, event: Mapping[str, Any], now: float) -> None:
        """Fold one event received at local time ``now``. Never raises on bad input."""
        self.apply_many((event,), now)

    def _settle(self, now: float) -> None:
        """Hand the batch's counts to the totals, history and throughput (once per batch: all
        its events share ``now``, so they share the history and throughput buckets too)."""
        if self._pending:
            self.totals.record_many(self._pending, self._runtimes)
            self._pending = {}
            self._runtimes = []
        if self._ok or self._failed:
            self.throughput.record_many(self._ok, self._failed, now)
            self.history.finished_many(self._ok, self._failed, now, self._ok_runtimes)
            self._ok = self._failed = 0
            self._ok_runtimes = []

    def _task_event(self, etype: str, event: Mapping[str, Any], now: float) -> None:
        uuid = event.get("uuid")
        if uuid.__class__ is not str or not uuid:
            self.malformed += 1
            return
        self.version += 1
        if len(uuid) > KEY_LIMIT or not uuid.isprintable():
            uuid = clean_key(uuid)
        hostname = event.get("hostname")
        if hostname.__class__ is not str:
            hostname = ""
        elif len(hostname) > KEY_LIMIT or not hostname.isprintable():
            hostname = clean_key(hostname)
        ts = event.get("timestamp")
        if ts.__class__ is not float or not isfinite(ts):
            ts = as_float(ts, now)
        clock = event.get("clock", 0)
        if clock.__class__ is not int:
            clock = int(as_float(clock, 0))
        tasks = self.tasks
        task = tasks.get(uuid)
        created = task is None
        if task is None:
            self._seq += 1
            task = tasks[uuid] = Task(uuid, self._seq, now)
            task.size = TASK_BASE_SIZE
            self.bytes += TASK_BASE_SIZE
            self.task_count += 1
            self._tiers[1][uuid] = None
            old_state: str | None = None
        else:
            old_state = task.state
        task.updated = now

        # The worker (or the client, for task-sent) and its implicit heartbeat.
        if etype == "task-sent":
            if hostname:
                task.client = hostname
        elif hostname:
            task.worker = hostname
            worker = self.workers.get(hostname)
            if worker is None:
                if len(self.workers) >= self.max_workers:
                    self._forget_one_worker(now)
                worker = self.workers[hostname] = Worker(hostname)
            received = event.get("local_received", now)
            if received.__class__ is not float:
                received = as_float(received, now)
            beat = worker.last_heartbeat
            if beat is None or received > beat:
                # (not worker.is_online(received), inlined: this runs for every task event)
                if worker.offline_since is None and (
                    beat is None or received >= beat + 2.0 * worker.freq
                ):
                    worker.online_since = received
                worker.last_heartbeat = received

        # Timeline (duplicates dropped; kept in time order; bounded).
        entry = (etype, ts, hostname, clock)
        timeline = task.timeline
        entries = len(timeline)
        if not timeline:
            timeline.append(entry)
        else:
            last = timeline[-1]
            if entry == last:
                pass
            elif ts > last[1] or (ts == last[1] and clock > last[3]):
                timeline.append(entry)
            elif entry not in timeline:
                timeline.append(entry)
                timeline.sort(key=_timeline_key)
            if len(timeline) > TIMELINE_MAX:
                del timeline[1 : len(timeline) - TIMELINE_MAX + 1]
        if len(timeline) != entries:
            grown = TIMELINE_ENTRY_SIZE * (len(timeline) - entries)
            task.size += grown
            self.bytes += grown

        # Which state does this event mean, and does it win?
        spec = TASK_SPEC.get(etype)
        if spec is None:
            new_state = etype[5:].upper() or "UNKNOWN"
            new_rank = CUSTOM_PRECEDENCE
            fields: tuple[tuple[str, int], ...] = ()
            kind = None
            self._custom_fields(task, event)
        else:
            new_state, new_rank, fields, time_attr, kind = spec
            setattr(task, time_attr, ts)
        current = task.state
        if current is None:
            wins = True
        elif (
            new_state == RETRY
            or current == RETRY
            or (new_state == REJECTED and event.get("requeue"))
            or (current == REJECTED and task.requeue)
        ):
            # Looping states: order by the Lamport clock on one host, else by sender time.
            if hostname == task.state_host:
                wins = (clock, ts) >= (task.clock, task.timestamp or 0.0)
            else:
                wins = (ts, clock) >= (task.timestamp or 0.0, task.clock)
        else:
            wins = new_rank <= PRECEDENCE.get(current, CUSTOM_PRECEDENCE)
        limit = self.field_limit
        size = task.size
        if wins:
            for field, how in fields:
                if field in event:
                    value = event[field]
                    # Short printable text, an int count or a finite runtime >= 0 is already
                    # what field_value would return.
                    if value is None:
                        new = None
                    elif (
                        (
                            how <= FIELD_KEY
                            and value.__class__ is str
                            and len(value) <= (limit if how == FIELD_PLAIN else KEY_LIMIT)
                            and value.isprintable()
                        )
                        or (how == FIELD_INT and value.__class__ is int)
                        or (
                            how == FIELD_RUNTIME and value.__class__ is float and 0.0 <= value < INF
                        )
                    ):
                        new = value
                    else:
                        new = field_value(field, value, limit)
                    if not created:  # a new task holds nothing yet
                        old = getattr(task, field)
                        if old.__class__ is str:
                            size -= len(old)
                    setattr(task, field, new)
                    if new.__class__ is str:
                        size += len(new)
            task.state = new_state
            task.timestamp = ts
            task.clock = clock
            task.state_host = hostname
        else:
            for field, _how in fields:
                if field in event and getattr(task, field) is None:
                    new = field_value(field, event[field], limit)
                    setattr(task, field, new)
                    if new.__class__ is str:
                        size += len(new)
        if task.name is None:  # any event may carry the name (a rejection of an unknown task)
            name = event.get("name")
            if name.__class__ is str and name:
                task.name = clean_key(name)
                size += len(task.name)
        if kind is None:
            size = size_of(task)  # a custom event: its fields are counted too
        if size != task.size:
            self.bytes += size - task.size
            task.size = size
        if task.runtime is None and task.started is not None and new_state in FINISHED_STATES:
            end = task.succeeded or task.failed
            if end is not None and end >= task.started:
                task.runtime = end - task.started

        state = new_state if wins else current
        if state != old_state and state is not None:
            counts = self.counts
            if old_state is not None:
                counts[old_state] -= 1
            counts[state] = counts.get(state, 0) + 1
            if state == SUCCESS:
                self._ok += 1
                if task.runtime is not None:
                    self._ok_runtimes.append(task.runtime)
            elif state == FAILURE:
                self._failed += 1
            old_tier = 0 if old_state == SUCCESS else 2 if old_state == FAILURE else 1
            new_tier = 0 if state == SUCCESS else 2 if state == FAILURE else 1
            if old_tier != new_tier:
                del self._tiers[old_tier][uuid]
                self._tiers[new_tier][uuid] = None
        if kind is not None:  # totals count every known task event (handed on by _settle)
            exception = ""
            if kind == "failed" and task.exception:
                exception = task.exception.split("(", 1)[0][:80]
            key = (kind, task.name or "", hostname, task.queue or "", exception)
            pending = self._pending
            pending[key] = pending.get(key, 0) + 1
            if kind == "succeeded" and task.runtime is not None:
                self._runtimes.append((key, task.runtime))
        if self.track_changes:
            self.changed.add(uuid)
        if (created and len(tasks) > self.max_tasks) or self.bytes > self.max_bytes:
            self._evict()

    def _custom_fields(self, task: Task, event: Mapping[str, Any]) -> None:
        extra = custom_fields(event, self.field_limit)
        if extra:
            if task.extra is None:
                task.extra = extra
            else:
                task.extra.update(extra)

    # ------------------------------------------------------------------ bounds

    def _evict(self) -> None:
        succeeded, other, failed = self._tiers
        while len(self.tasks) > self.max_tasks or (
            self.bytes > self.max_bytes and len(self.tasks) > 1
        ):
            if failed and (len(failed) > self.max_failed or not (succeeded or other)):
                tier = failed
            elif succeeded:
                tier = succeeded
            elif other:
                tier = other
            else:  # pragma: no cover - tiers and tasks always hold the same uuids
                break
            uuid, _ = tier.popitem(last=False)
            task = self.tasks.pop(uuid)
            self.bytes -= task.size
            if task.state is not None:
                self.counts[task.state] -= 1
            self.evicted += 1
            if self.track_changes:
                self.changed.discard(uuid)

    # ------------------------------------------------------------------ queries and restore

    def count(self, state: str) -> int:
        return self.counts.get(state, 0)

    def drain_changed(self) -> set[str]:
        """The uuids of tasks changed since the last call (with ``track_changes``)."""
        changed, self.changed = self.changed, set()
        return changed

    def restore(self, tasks: Iterable[Task]) -> int:
        """Seed the state with tasks from a store (oldest first); keeps the bound."""
        n = 0
        for task in tasks:
            if task.uuid in self.tasks or task.state is None:
                continue
            self._seq += 1
            task.seq = self._seq
            clean_restored(task, self.field_limit)
            self.bytes += task.size
            self.tasks[task.uuid] = task
            state = task.state
            self.counts[state] = self.counts.get(state, 0) + 1
            tier = 0 if state == SUCCESS else 2 if state == FAILURE else 1
            self._tiers[tier][task.uuid] = None
            n += 1
            if len(self.tasks) > self.max_tasks or self.bytes > self.max_bytes:
                self._evict()
        self.version += 1
        return n


def _timeline_key(entry: tuple[str, float, str, int]) -> tuple[float, int]:
    return entry[1], entry[3]
