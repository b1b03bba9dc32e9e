"""``-B``: the periodic-task scheduler running inside a worker, on a thread and connection of its
own (pika's rule: one connection per thread).

**Run one scheduler per cluster.** Every worker started with ``-B`` sends every periodic task,
so two of them run each task twice; nothing on the broker prevents it (Celery's rule too). The
schedule file (``--schedule``, default ``amqptool-beat.json`` in the current directory) keeps
each entry's last run, so a restarted scheduler neither skips nor doubles a run
(:mod:`worker.beat.scheduler`).

Periodic tasks are declared with :func:`worker.periodic_task` in the task modules (``-A``). A
message goes to the entry's ``queue`` (or ``routing_key`` option), else to the worker's first
queue (``-Q``). Each is published ``mandatory`` with publisher confirms: a run is recorded only
once the broker has the message, and one the broker cannot route is retried later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from amqptool.codec.times import utcnow
from amqptool.errors import AmqpToolError
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from worker.beat.scheduler import Beat, BeatThread, entry_envelope
from worker.task.periodic import PeriodicEntry

__all__ = ["BeatSender", "EmbeddedBeat"]

log = logging.getLogger("worker.beat")


class BeatSender:
    """``send(entry)`` for :class:`~worker.beat.scheduler.Beat`: publish, confirmed, on its own
    link."""

    def __init__(self, settings: BrokerSettings, nodename: str, default_queue: str) -> None:
        self.settings = settings
        self.name = f"amqptool-worker {nodename} beat"
        self.default_queue = default_queue
        self._conn: Connection | None = None
        self._channel: Channel | None = None

    def __call__(self, entry: PeriodicEntry) -> None:
        if entry.queue is None and not entry.options.get("routing_key"):
            entry = dataclasses.replace(entry, queue=self.default_queue)
        env = entry_envelope(entry, utcnow())
        try:
            self._open().publish(env, mandatory=True)
        except AmqpToolError:
            self.close()  # the next send starts afresh
            raise

    def _open(self) -> Channel:
        if self._conn is None or not self._conn.is_open:
            self._conn = Connection(self.settings, name=self.name).connect()
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._conn.channel(confirm=True)
        return self._channel

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except AmqpToolError as exc:
                log.debug("beat: closing its connection: %s", exc)


class EmbeddedBeat:
    """The beat thread of a ``-B`` worker: :meth:`start` (reads the schedule file, raising
    ScheduleFileError for a bad one) and :meth:`stop`."""

    def __init__(
        self,
        entries: Iterable[PeriodicEntry],
        settings: BrokerSettings,
        nodename: str,
        *,
        default_queue: str,
        schedule_file: str,
    ) -> None:
        self.sender = BeatSender(settings, nodename, default_queue)
        self.schedule_file = schedule_file
        self.beat = Beat(entries, self.sender, schedule_file=schedule_file)
        self.thread = BeatThread(self.beat)

    def start(self) -> None:
        if not self.beat.entries:
            log.warning("beat: no periodic tasks are defined (use @periodic_task in an -A module)")
        self.beat.open(utcnow())
        names = ", ".join(sorted(self.beat.entries)) or "none"
        log.info("beat: started (schedule file %s; entries: %s)", self.schedule_file, names)
        self.thread.start()

    def stop(self) -> None:
        self.thread.stop()
        self.sender.close()
