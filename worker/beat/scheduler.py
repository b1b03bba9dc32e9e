"""The periodic-task scheduler ("beat"): runs due entries and remembers when it last did.

**Run exactly one beat per cluster** (one worker started with ``-B``, or one ``amqptool
worker -B`` process): two beats each send every periodic task, so each runs twice. Nothing in
the broker stops a second one; this is the same rule as Celery's.

:class:`Beat` is pure and clock-injected: ``tick(now)`` sends what is due at ``now`` through the
``send(entry)`` callback and returns how long to sleep. It keeps, per entry, the time of the
last run in a JSON schedule file (replaced atomically after every run), so a restart neither
skips nor doubles a run:

- A new entry is anchored at the time the beat first sees it (Celery's default), and the anchor
  is saved at once, so restarting does not push an interval run further away.
- Runs missed while no beat was running are coalesced: the entry runs once, right away, and is
  counted from then (Celery does the same).
- A run is recorded after ``send`` returns, so a crash between the two sends it again on restart
  (at-least-once, never lost). ``send`` should return only when the broker has the message
  (publisher confirms). If ``send`` raises, the run is not recorded and is tried again after
  ``retry_after`` seconds.

:class:`BeatThread` is the thin runner for the worker's ``-B``: a thread that calls ``tick``
with the real clock and sleeps on an event, so ``stop()`` ends it at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.codec.times import format_iso, parse_iso, utcnow
from amqptool.errors import AmqpToolError, DecodeError
from amqptool.private import atomic_write, ensure_private
from worker.task.periodic import PeriodicEntry

__all__ = [
    "DEFAULT_MAX_INTERVAL",
    "Beat",
    "BeatThread",
    "EntryState",
    "ScheduleFile",
    "ScheduleFileError",
    "entry_envelope",
]

log = logging.getLogger("amqptool.worker.beat")

DEFAULT_MAX_INTERVAL = 300.0  # Celery's beat_max_loop_interval
DEFAULT_RETRY_AFTER = 5.0
SCHEDULE_FORMAT = "amqptool-beat-schedule"
SCHEDULE_VERSION = 1


class ScheduleFileError(AmqpToolError):
    """A beat schedule file that cannot be read or written."""


@dataclass
class EntryState:
    """What the schedule file remembers about one entry."""

    last_run_at: datetime
    total_run_count: int = 0
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "last_run_at": format_iso(self.last_run_at),
            "total_run_count": self.total_run_count,
            "schedule": self.fingerprint,
        }


class ScheduleFile:
    """The beat's JSON schedule file; entries it does not know are kept as they are."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._foreign: dict[str, Any] = {}

    def load(self) -> dict[str, EntryState]:
        note = ensure_private(self.path, "beat schedule", create=False)  # 0600, like --statedb
        if note:
            log.warning("%s", note)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot read it: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._error(f"not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != SCHEDULE_FORMAT:
            raise self._error("not an amqptool beat schedule file")
        if data.get("version") != SCHEDULE_VERSION:
            raise self._error(f"unsupported version {data.get('version')!r}")
        raw = data.get("entries")
        if not isinstance(raw, dict):
            raise self._error("'entries' must be an object")
        states: dict[str, EntryState] = {}
        for name, item in raw.items():
            try:
                states[name] = EntryState(
                    last_run_at=parse_iso(item["last_run_at"]),
                    total_run_count=int(item.get("total_run_count", 0)),
                    fingerprint=str(item.get("schedule", "")),
                )
            except (KeyError, TypeError, ValueError, AttributeError, DecodeError) as exc:
                raise self._error(f"bad entry {name!r}: {exc}") from None
        self._foreign = dict(raw)
        return states

    def save(self, states: dict[str, EntryState]) -> None:
        entries = dict(self._foreign)
        entries.update({name: st.to_json() for name, st in states.items()})
        data = {"format": SCHEDULE_FORMAT, "version": SCHEDULE_VERSION, "entries": entries}
        try:
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True))
        except OSError as exc:
            raise ScheduleFileError(
                f"cannot write the beat schedule file {self.path}: {exc}",
                hint="check the directory exists and is writable",
            ) from None

    def _error(self, why: str) -> ScheduleFileError:
        return ScheduleFileError(
            f"beat schedule file {self.path} is not usable: {why}",
            hint="move it away or delete it: every periodic task then starts counting afresh",
        )


def entry_envelope(entry: PeriodicEntry, now: datetime) -> Envelope:
    """The task message a beat publishes for ``entry`` at ``now`` (a new task id each run).

    Routed to ``options["routing_key"]`` or the entry's ``queue`` (default ``celery``) on
    ``options["exchange"]`` (default: the default exchange); ``expires`` may be seconds from now
    or a datetime. Publish it with ``mandatory=True`` on a confirm channel.
    """
    opts = entry.options
    expires = opts.get("expires")
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        expires = now + timedelta(seconds=float(expires))
    msg = TaskMessage(
        task=entry.task,
        args=list(entry.args),
        kwargs=dict(entry.kwargs),
        expires=expires if isinstance(expires, datetime) else None,
        priority=opts.get("priority"),
        time_limit=opts.get("time_limit"),
        soft_time_limit=opts.get("soft_time_limit"),
    )
    return encode_task(
        msg,
        serializer=str(opts.get("serializer", "json")),
        exchange=str(opts.get("exchange", "")),
        routing_key=str(opts.get("routing_key") or entry.queue or "celery"),
    )


class Beat:
    """Sends each periodic entry when it is due; see the module docstring for the rules."""

    def __init__(
        self,
        entries: Iterable[PeriodicEntry],
        send: Callable[[PeriodicEntry], None],
        *,
        schedule_file: str | Path | None = None,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        retry_after: float = DEFAULT_RETRY_AFTER,
    ) -> None:
        self.entries = {e.name: e for e in entries}
        self.send = send
        self.file = ScheduleFile(schedule_file) if schedule_file is not None else None
        self.max_interval = max_interval
        self.retry_after = retry_after
        self.states: dict[str, EntryState] = {}
        self._opened = False

    def open(self, now: datetime) -> None:
        """Load the schedule file and anchor entries it does not know (or whose schedule
        changed) at ``now``; saves the anchors. Raises :class:`ScheduleFileError`."""
        saved = self.file.load() if self.file is not None else {}
        self.states = {}
        for name, entry in self.entries.items():
            state = saved.get(name)
            if state is None or state.fingerprint != entry.fingerprint():
                if state is not None:
                    log.info("beat: schedule of %s changed, counting from now", name)
                state = EntryState(last_run_at=now, fingerprint=entry.fingerprint())
            self.states[name] = state
        self._opened = True
        self._save()

    def _save(self) -> None:
        if self.file is not None:
            self.file.save(self.states)

    def tick(self, now: datetime) -> float:
        """Send every entry due at ``now``; return the seconds until the next tick."""
        if not self._opened:
            self.open(now)
        waits = [self.max_interval]
        due: list[tuple[datetime, PeriodicEntry]] = []
        for name, entry in self.entries.items():
            is_due, next_in = entry.schedule.is_due(self.states[name].last_run_at, now)
            if is_due:
                due.append((entry.schedule.next_after(self.states[name].last_run_at), entry))
            else:
                waits.append(next_in)
        for _, entry in sorted(due, key=lambda pair: pair[0]):
            try:
                self.send(entry)
            except Exception as exc:  # a failed send must not stop the other entries
                log.error(
                    "beat: sending %s failed, retrying in %gs: %s",
                    entry.name,
                    self.retry_after,
                    exc,
                )
                waits.append(self.retry_after)
                continue
            state = self.states[entry.name]
            state.last_run_at = now
            state.total_run_count += 1
            self._save()
            log.info("beat: sent %s (%s)", entry.name, entry.task)
            waits.append(entry.schedule.is_due(now, now)[1])
        return max(0.0, min(waits))

    def last_run(self, name: str) -> datetime | None:
        state = self.states.get(name)
        return None if state is None else state.last_run_at


class BeatThread(threading.Thread):
    """Runs a :class:`Beat` on the real clock until :meth:`stop` (the worker's ``-B``)."""

    def __init__(self, beat: Beat, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(name="amqptool-beat", daemon=True)
        self.beat = beat
        self.clock = clock
        self._stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                wait = self.beat.tick(self.clock())
                self._stopping.wait(wait)
        except Exception as exc:  # reported to the worker through .error, not lost
            self.error = exc
            log.error("beat stopped: %s", exc)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
