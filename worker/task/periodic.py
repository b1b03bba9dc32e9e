"""Periodic task schedules (Celery's ``schedule`` and ``crontab``) and their registry.

Pure and clock-injected: ``is_due(last_run, now)`` never reads the clock. Times are aware
datetimes (naive ones are taken as UTC).

- :class:`schedule` ``(run_every)``: a timedelta or seconds; due ``run_every`` after the last
  run.
- :class:`crontab` ``(minute, hour, day_of_week, day_of_month, month_of_year)``: Celery's
  syntax per field: ``*``, ``*/15``, ``1,2``, ``1-5``, ``1-10/2``, names (``mon``..``sun``,
  ``jan``..``dec``), an int or a set of ints. ``day_of_week`` 0 is Sunday. As in Celery (not
  as in Unix cron) the day of week, day of month and month must *all* match. Evaluated in
  ``tz`` (default UTC) on wall-clock minutes.
- ``is_due(last_run, now) -> (due, next_in_seconds)``, as Celery: ``(True, n)`` means run now
  and look again in ``n`` s; ``(False, n)`` means look again in ``n`` s.
- :func:`periodic_task` records a :class:`PeriodicEntry` in a :class:`PeriodicRegistry` (the
  module's :data:`registry` by default) and returns the function unchanged; the beat
  (:mod:`worker.beat.scheduler`) reads the entries and sends each as a task message when it is due.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol, TypeVar

__all__ = [
    "PeriodicEntry",
    "PeriodicRegistry",
    "Schedule",
    "crontab",
    "periodic_task",
    "registry",
    "schedule",
    "to_schedule",
]

F = TypeVar("F", bound=Callable[..., Any])

_DAY_NAMES = {
    name: i
    for i, names in enumerate(
        [
            ("sun", "sunday"),
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
        ]
    )
    for name in names
}
_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_name) if name
}

_SEARCH_DAYS = 366 * 8 + 2  # covers Feb 29 (every 4 years, 8 across a skipped leap century)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Schedule(Protocol):
    """What the beat needs from a schedule."""

    def is_due(self, last_run: datetime, now: datetime) -> tuple[bool, float]: ...

    def next_after(self, last_run: datetime) -> datetime: ...

    def describe(self) -> str: ...


# ---------------------------------------------------------------------- schedule


class schedule:  # Celery's public name, kept for familiarity
    """Every ``run_every`` (a timedelta or seconds), counted from the last run."""

    def __init__(self, run_every: timedelta | float) -> None:
        every = run_every if isinstance(run_every, timedelta) else timedelta(seconds=run_every)
        if every.total_seconds() <= 0:
            raise ValueError(f"run_every must be positive, not {run_every!r}")
        self.run_every = every

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def next_after(self, last_run: datetime) -> datetime:
        return _aware(last_run) + self.run_every

    def is_due(self, last_run: datetime, now: datetime) -> tuple[bool, float]:
        remaining = (self.next_after(last_run) - _aware(now)).total_seconds()
        if remaining <= 0:
            return True, self.seconds
        return False, remaining

    def describe(self) -> str:
        return f"<every {self.seconds:g} seconds>"

    def __repr__(self) -> str:
        return self.describe()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other.run_every == self.run_every

    def __hash__(self) -> int:
        return hash(self.run_every)


# ---------------------------------------------------------------------- crontab

Cronspec = str | int | Iterable[int]

_PART = re.compile(r"^(?P<range>\*|[\w]+(?:-[\w]+)?)(?:/(?P<step>\w*))?$")


def _number(token: str, low: int, high: int, names: Mapping[str, int]) -> int:
    token = token.strip().lower()
    if token.startswith("-"):
        raise ValueError("negative numbers not supported")
    if token.isdigit():
        value = int(token)
    elif token in names:
        value = names[token]
    else:
        raise ValueError(f"Invalid weekday or month literal {token!r}.")
    if value > high:
        raise ValueError(f"Invalid end range: {value} > {high}.")
    if value < low:
        raise ValueError(f"Invalid beginning range: {value} < {low}.")
    return value


def parse_cronspec(
    spec: Cronspec, low: int, high: int, names: Mapping[str, int] | None = None
) -> frozenset[int]:
    """Expand one crontab field to the set of values it matches (``low``..``high``)."""
    names = names or {}
    if isinstance(spec, bool):
        raise TypeError(f"a crontab field is not a boolean: {spec!r}")
    if isinstance(spec, int):
        values = {spec}
    elif isinstance(spec, str):
        values = set()
        for part in spec.replace(" ", "").split(","):
            if not part:
                raise ValueError(f"empty part in crontab field {spec!r}")
            match = _PART.match(part)
            if match is None:
                raise ValueError(f"cannot parse crontab field {spec!r} at {part!r}")
            rng, step_text = match.group("range"), match.group("step")
            if rng == "*":
                span = list(range(low, high + 1))
            elif "-" in rng:
                first, last = (_number(t, low, high, names) for t in rng.split("-", 1))
                if last < first:  # wraps around, e.g. fri-mon
                    span = list(range(first, high + 1)) + list(range(low, last + 1))
                else:
                    span = list(range(first, last + 1))
            else:
                start = _number(rng, low, high, names)
                span = list(range(start, high + 1)) if step_text is not None else [start]
            if step_text is not None:
                if not step_text.isdigit() or int(step_text) == 0:
                    raise ValueError(f"bad step in crontab field {spec!r}")
                span = span[:: int(step_text)]
            values.update(span)
    else:
        values = set()
        for v in spec:
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"crontab field values must be ints, not {v!r}")
            values.add(v)
    for v in values:
        if not low <= v <= high:
            raise ValueError(f"Invalid crontab pattern: {v} is not in {low}..{high}.")
    if not values:
        raise ValueError(f"crontab field {spec!r} matches nothing")
    return frozenset(values)


class crontab:  # Celery's public name, kept for familiarity
    """Run at the wall-clock minutes that match every field (default: every minute)."""

    def __init__(
        self,
        minute: Cronspec = "*",
        hour: Cronspec = "*",
        day_of_week: Cronspec = "*",
        day_of_month: Cronspec = "*",
        month_of_year: Cronspec = "*",
        *,
        tz: tzinfo = UTC,
    ) -> None:
        self.minute = parse_cronspec(minute, 0, 59)
        self.hour = parse_cronspec(hour, 0, 23)
        self.day_of_week = parse_cronspec(day_of_week, 0, 6, _DAY_NAMES)
        self.day_of_month = parse_cronspec(day_of_month, 1, 31)
        self.month_of_year = parse_cronspec(month_of_year, 1, 12, _MONTH_NAMES)
        self.tz = tz
        self._spec = (minute, hour, day_of_week, day_of_month, month_of_year)
        self._hours = sorted(self.hour)
        self._minutes = sorted(self.minute)
        days_in_month = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        if not any(
            d <= days_in_month[m - 1] for m in self.month_of_year for d in self.day_of_month
        ):
            raise ValueError(
                f"crontab day_of_month={day_of_month!r} month_of_year={month_of_year!r} "
                "never matches a real date"
            )

    @classmethod
    def from_string(cls, text: str, *, tz: tzinfo = UTC) -> crontab:
        """``"minute hour day_of_month month_of_year day_of_week"`` (Unix field order)."""
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"a crontab string has 5 fields, not {len(fields)}: {text!r}")
        minute, hour, dom, moy, dow = fields
        return cls(minute, hour, dow, dom, moy, tz=tz)

    def _day_matches(self, day: date) -> bool:
        return (
            day.month in self.month_of_year
            and day.day in self.day_of_month
            and day.isoweekday() % 7 in self.day_of_week
        )

    def next_after(self, last_run: datetime) -> datetime:
        """The first matching minute after the minute that holds ``last_run``."""
        local = _aware(last_run).astimezone(self.tz)
        start = local.replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in self._hours:
                    if day == start.date() and hour < start.hour:
                        continue
                    for minute in self._minutes:
                        if day == start.date() and hour == start.hour and minute < start.minute:
                            continue
                        return datetime.combine(day, time(hour, minute), tzinfo=self.tz)
            day += timedelta(days=1)
        raise ValueError(f"{self.describe()} has no run within {_SEARCH_DAYS} days")

    def is_due(self, last_run: datetime, now: datetime) -> tuple[bool, float]:
        at = _aware(now)
        if self.next_after(last_run) <= at:
            return True, max(0.0, (self.next_after(at) - at).total_seconds())
        return False, max(0.0, (self.next_after(last_run) - at).total_seconds())

    def describe(self) -> str:
        minute, hour, dow, dom, moy = (_fmt(s) for s in self._spec)
        return f"<crontab: {minute} {hour} {dow} {dom} {moy} (m/h/dow/dom/moy)>"

    def __repr__(self) -> str:
        return self.describe()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and (
            other.minute,
            other.hour,
            other.day_of_week,
            other.day_of_month,
            other.month_of_year,
            other.tz,
        ) == (
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year,
            self.tz,
        )

    def __hash__(self) -> int:
        return hash((self.minute, self.hour, self.day_of_week, self.day_of_month))


def _fmt(spec: Cronspec) -> str:
    if isinstance(spec, str | int):
        return str(spec)
    return ",".join(str(v) for v in sorted(spec))


def to_schedule(run_every: Schedule | timedelta | float) -> Schedule:
    """A schedule from what ``run_every`` accepts: a schedule, a crontab, a timedelta or seconds."""
    if isinstance(run_every, bool):
        raise TypeError(
            f"run_every must be a timedelta, seconds, schedule or crontab: {run_every!r}"
        )
    if isinstance(run_every, timedelta | int | float):
        return schedule(run_every)
    if hasattr(run_every, "is_due") and hasattr(run_every, "next_after"):
        return run_every
    raise TypeError(f"run_every must be a timedelta, seconds, schedule or crontab: {run_every!r}")


# ---------------------------------------------------------------------- registry

ENTRY_OPTIONS = frozenset(
    {
        "priority",
        "expires",
        "time_limit",
        "soft_time_limit",
        "exchange",
        "routing_key",
        "serializer",
    }
)


@dataclass
class PeriodicEntry:
    """One periodic task: when, which task, with what arguments, where to.

    ``name`` identifies the entry in the schedule file (default: the task name); ``options``
    are extra publish options for the task message (``priority``, ``expires``, ...).
    """

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.options) - ENTRY_OPTIONS
        if unknown:
            raise ValueError(
                f"periodic entry {self.name!r}: unknown options {sorted(unknown)} "
                f"(known: {', '.join(sorted(ENTRY_OPTIONS))})"
            )

    def fingerprint(self) -> str:
        """Changes when the schedule changes: a new schedule restarts the entry's anchor."""
        return self.schedule.describe()


class PeriodicRegistry:
    """The periodic entries, by entry name (a name registered twice is replaced)."""

    def __init__(self) -> None:
        self._entries: dict[str, PeriodicEntry] = {}

    def add(self, entry: PeriodicEntry) -> PeriodicEntry:
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def entries(self) -> list[PeriodicEntry]:
        return list(self._entries.values())

    def clear(self) -> None:
        self._entries.clear()

    def __iter__(self) -> Iterator[PeriodicEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


_DEFAULT_REGISTRY = PeriodicRegistry()
registry = _DEFAULT_REGISTRY  # where @periodic_task records entries unless told otherwise


def periodic_task(
    run_every: Schedule | timedelta | float,
    *,
    name: str | None = None,
    entry_name: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    options: Mapping[str, Any] | None = None,
    registry: PeriodicRegistry | None = None,
) -> Callable[[F], F]:
    """Record the decorated function as a periodic task and return it unchanged.

    ``name`` is the task name (default: the task's own name when stacked over ``@task``, else
    ``module.qualname`` as Celery); the worker's task decorator registers the task itself.
    ``run_every`` is a timedelta, seconds, a :class:`schedule` or a :class:`crontab`.
    """
    sched = to_schedule(run_every)
    target = _DEFAULT_REGISTRY if registry is None else registry

    def decorate(fn: F) -> F:
        own = getattr(fn, "name", None)  # a task object (``@periodic_task`` over ``@task``)
        task_name = name or (own if isinstance(own, str) else f"{fn.__module__}.{fn.__qualname__}")
        target.add(
            PeriodicEntry(
                name=entry_name or task_name,
                task=task_name,
                schedule=sched,
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                queue=queue,
                options=dict(options or {}),
            )
        )
        return fn

    return decorate
