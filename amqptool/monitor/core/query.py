"""Which tasks the table shows and in what order: the filter language and sort order."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from amqptool.monitor.core.model import STATES, Task

__all__ = ["TASK_COLUMNS", "SortSpec", "TaskFilter", "search_text", "sort_key"]

#: (key, title) of the task table's columns, in display order.
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("uuid", "UUID"),
    ("name", "Name"),
    ("state", "State"),
    ("worker", "Worker"),
    ("received", "Received"),
    ("started", "Started"),
    ("runtime", "Runtime"),
    ("retries", "Retries"),
    ("eta", "ETA"),
    ("result", "Result"),
    ("args", "Args"),
)
_STATE_ORDER = {s: i for i, s in enumerate(STATES)}


@dataclass(frozen=True)
class TaskFilter:
    """``state:failure,retry name:add worker:w1 free words`` (all parts must match).

    ``state:`` takes exact state names (any of a comma list); ``name:`` and ``worker:`` are
    case-insensitive substrings; other words must each appear in the uuid, name, worker,
    args, kwargs, result or exception.
    """

    states: frozenset[str] = frozenset()
    name: str | None = None
    worker: str | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TaskFilter:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        states: set[str] = set()
        name: str | None = None
        worker: str | None = None
        words: list[str] = []
        for part in parts:
            key, sep, value = part.partition(":")
            key = key.lower()
            if sep and value and key == "state":
                states.update(s.strip().upper() for s in value.split(",") if s.strip())
            elif sep and value and key in ("name", "task"):
                name = value.lower()
            elif sep and value and key in ("worker", "host", "hostname"):
                worker = value.lower()
            else:
                words.append(part.lower())
        return cls(frozenset(states), name, worker, tuple(words))

    @property
    def empty(self) -> bool:
        return not (self.states or self.name or self.worker or self.words)

    def describe(self) -> str:
        parts: list[str] = []
        if self.states:
            parts.append("state:" + ",".join(sorted(self.states)))
        if self.name:
            parts.append(f"name:{self.name}")
        if self.worker:
            parts.append(f"worker:{self.worker}")
        parts.extend(self.words)
        return " ".join(parts)

    def narrows(self, wider: TaskFilter) -> bool:
        """Every task this filter matches is matched by ``wider`` too (typing on in the
        filter box: the new matches are found among the old ones, not among every task)."""
        if wider.states and not (self.states and self.states <= wider.states):
            return False
        for mine, theirs in ((self.name, wider.name), (self.worker, wider.worker)):
            if theirs and not (mine and theirs in mine):
                return False
        return all(any(w in mine for mine in self.words) for w in wider.words)

    def matches(self, task: Task) -> bool:
        if self.states and task.state not in self.states:
            return False
        if self.name and self.name not in (task.name or "").lower():
            return False
        if self.worker and self.worker not in (task.worker or "").lower():
            return False
        if self.words:
            haystack = search_text(task)
            return all(word in haystack for word in self.words)
        return True


def search_text(task: Task) -> str:
    """The lower-cased text free-text filters search (also stored by the SQLite store)."""
    parts = (
        task.uuid,
        task.name,
        task.worker,
        task.args,
        task.kwargs,
        task.result,
        task.exception,
    )
    return "\n".join(p if isinstance(p, str) else repr(p) for p in parts if p is not None).lower()


@dataclass(frozen=True)
class SortSpec:
    """Sort by a task column; ``column=None`` means arrival order. Newest/largest first."""

    column: str | None = None
    descending: bool = True

    def next_column(self) -> SortSpec:
        keys: list[str | None] = [None, *(key for key, _ in TASK_COLUMNS)]
        index = keys.index(self.column) if self.column in keys else 0
        column = keys[(index + 1) % len(keys)]
        return SortSpec(column, self.descending)

    def reversed(self) -> SortSpec:
        return SortSpec(self.column, not self.descending)

    def by(self, column: str) -> SortSpec:
        """Sort by ``column``; choosing the current column again flips the order."""
        if column == self.column:
            return self.reversed()
        return SortSpec(column, True)

    def describe(self) -> str:
        arrow = "↓" if self.descending else "↑"
        title = dict(TASK_COLUMNS).get(self.column or "", "arrival")
        return f"{title} {arrow}"


def sort_key(column: str | None) -> Any:
    if column is None:
        return lambda t: (t.first_seen, t.seq)
    if column == "result":
        return lambda t: (str(t.exception or t.result or ""), t.seq)
    if column in ("received", "started", "runtime", "retries"):

        def number_key(t: Task) -> tuple[bool, float, int]:
            value = getattr(t, column)
            return (value is not None, value or 0.0, t.seq)

        return number_key
    if column == "state":
        return lambda t: (_STATE_ORDER.get(t.state or "", len(STATES)), t.state or "", t.seq)
    return lambda t: (str(getattr(t, column) or ""), t.seq)
