"""The worker's revoked ids: bounded like Celery's ``LimitedSet``, persistent with ``--statedb``.

Pure except :class:`StateDB`, which reads and writes one file. Times are explicit ``now``
values in **wall-clock seconds** (``time.time()``), so the stamps in a state file still mean
something after a restart (Celery stamps with ``time.monotonic()``, which a reboot resets).

- At most ``maxlen`` ids (default 50 000), each kept ``expires`` seconds (default 10 800 = 3 h)
  after it was (last) added; the oldest go first when the set is full (docs/protocol.md §5.4).
- :meth:`RevokedSet.merge` takes what Celery's ``hello`` carries: a list of ids (5.7) or the
  ≤5.6 object ``{id: [insert_time, id]}``. Foreign stamps come from another host's clock, so
  merged ids are stamped with the local ``now`` (as Celery 5.7 does).
- Revokes by stamped header (``revoke_by_stamped_headers``) are kept beside the ids, as Celery's
  ``revoked_stamps``: header name → list of revoked values, unbounded, not aged.
- :class:`StateDB` keeps both (and the worker's Lamport clock) in a JSON file written
  atomically (temporary file, fsync, rename). A missing file is an empty state; a file that is
  not a valid state file raises :class:`StateFileError`, one clear line for the user.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqptool.errors import AmqpToolError
from amqptool.private import atomic_write, ensure_private

__all__ = [
    "DEFAULT_EXPIRES",
    "DEFAULT_MAXLEN",
    "RevokedSet",
    "StateDB",
    "StateFileError",
    "WorkerState",
    "parse_stamp_headers",
]

log = logging.getLogger("worker.consumer")

DEFAULT_MAXLEN = 50_000
DEFAULT_EXPIRES = 10_800.0
STATE_FORMAT = "amqptool-worker-state"
STATE_VERSION = 1


class StateFileError(AmqpToolError):
    """A ``--statedb`` file that cannot be read or written."""


def parse_stamp_headers(headers: Mapping[str, Any] | Sequence[str]) -> dict[str, list[Any]]:
    """``revoke_by_stamped_headers``' ``headers``: an object, or a list of ``"k=v"`` strings.

    Values become lists (a single value is a one-item list), as Celery's ``maybe_list``.
    """
    if isinstance(headers, Mapping):
        items: Iterable[tuple[str, Any]] = headers.items()
    else:
        pairs = []
        for text in headers:
            key, sep, value = str(text).partition("=")
            if not sep:
                raise ValueError(f"stamped header must be 'name=value', not {text!r}")
            pairs.append((key, value))
        items = pairs
    out: dict[str, list[Any]] = {}
    for key, value in items:
        values = list(value) if isinstance(value, list | tuple) else [value]
        out.setdefault(str(key), []).extend(values)
    return out


class RevokedSet:
    """Revoked task ids, oldest first; bounded by count and age."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN, expires: float = DEFAULT_EXPIRES) -> None:
        if maxlen < 0:
            raise ValueError(f"maxlen must be >= 0 (0 = unbounded), not {maxlen}")
        if expires < 0:
            raise ValueError(f"expires must be >= 0 (0 = never), not {expires}")
        self.maxlen = maxlen
        self.expires = float(expires)
        self._data: OrderedDict[str, float] = OrderedDict()
        self._stamps: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ ids

    def add(self, task_id: str, now: float) -> None:
        """Add an id (or refresh the age of one already there), evicting the oldest if full."""
        self._data.pop(task_id, None)
        self._data[task_id] = float(now)
        self._enforce_maxlen()

    def update(self, task_ids: Iterable[str], now: float) -> None:
        for task_id in task_ids:
            self.add(str(task_id), now)

    def discard(self, task_id: str) -> None:
        self._data.pop(task_id, None)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __bool__(self) -> bool:
        return bool(self._data)

    def ids(self) -> list[str]:
        """The ids, oldest first (the ``revoked`` inspect reply and the ``hello`` reply)."""
        return list(self._data)

    def records(self) -> list[tuple[str, float]]:
        """``(id, added_at)`` pairs, oldest first."""
        return list(self._data.items())

    def purge(self, now: float) -> int:
        """Drop ids older than ``expires`` (and any beyond ``maxlen``); returns how many went."""
        before = len(self._data)
        self._enforce_maxlen()
        if self.expires:
            # Insertion order is age order unless the wall clock stepped back; stopping at the
            # first live id then keeps a few old ones a little longer, never drops a live one.
            while self._data:
                task_id, added = next(iter(self._data.items()))
                if added + self.expires > now:
                    break
                del self._data[task_id]
        return before - len(self._data)

    def _enforce_maxlen(self) -> None:
        if self.maxlen:
            while len(self._data) > self.maxlen:
                self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
        self._stamps.clear()

    def merge(self, revoked: Any, now: float) -> int:
        """Merge another worker's revoked ids from ``hello`` (list, or the ≤5.6 dict form).

        Returns how many ids were new. Anything else (``None``, a number) merges nothing.
        """
        if isinstance(revoked, Mapping):
            incoming: list[str] = [str(k) for k in revoked]
        elif isinstance(revoked, list | tuple | set | frozenset):
            incoming = [str(x) for x in revoked if isinstance(x, str | int)]
        else:
            return 0
        new = sum(1 for task_id in incoming if task_id not in self._data)
        for task_id in incoming:
            if task_id not in self._data:  # a known id keeps its age: no ping-pong renewal
                self.add(task_id, now)
        return new

    def hello_reply(self, clock: int, now: float) -> dict[str, Any]:
        """What to answer a ``hello`` from another node: live ids oldest first, and the clock."""
        self.purge(now)
        return {"revoked": self.ids(), "clock": clock}

    # ------------------------------------------------------------------ stamps

    def revoke_stamps(self, headers: Mapping[str, Any] | Sequence[str]) -> dict[str, list[Any]]:
        """Record revokes by stamped header; returns the parsed ``{header: [values]}``."""
        parsed = parse_stamp_headers(headers)
        for key, values in parsed.items():
            kept = self._stamps.setdefault(key, [])
            kept.extend(v for v in values if v not in kept)
        return parsed

    def stamps(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self._stamps.items()}

    def revoking_stamp(
        self, stamped_headers: Sequence[str] | None, stamps: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The ``{header: value}`` revoking a task with these stamps, or None (Celery's test)."""
        if not stamped_headers or not self._stamps:
            return None
        stamps = stamps or {}
        for header in stamped_headers:
            revoked_values = self._stamps.get(header)
            value = stamps.get(header)
            if revoked_values is None or value is None:
                continue
            candidates = value if isinstance(value, list | tuple) else [value]
            for candidate in candidates:
                if candidate in revoked_values:
                    return {header: candidate}
        return None

    def is_revoked(
        self,
        task_id: str,
        stamped_headers: Sequence[str] | None = None,
        stamps: Mapping[str, Any] | None = None,
    ) -> bool:
        """Revoked by id, or by one of its stamped headers."""
        return task_id in self._data or self.revoking_stamp(stamped_headers, stamps) is not None


# ---------------------------------------------------------------------- persistence


@dataclass
class WorkerState:
    """What a ``--statedb`` file holds."""

    revoked: list[tuple[str, float]] = field(default_factory=list)
    stamps: dict[str, list[Any]] = field(default_factory=dict)
    clock: int = 0

    def restore_into(self, revoked: RevokedSet, now: float) -> None:
        """Load the saved ids (keeping their ages) and stamps into ``revoked``, then purge."""
        for task_id, added in sorted(self.revoked, key=lambda rec: rec[1]):
            revoked.add(task_id, added)
        revoked.revoke_stamps(self.stamps)
        revoked.purge(now)


class StateDB:
    """The ``--statedb FILE``: a JSON file replaced atomically on every save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> WorkerState:
        """The saved state; an empty one when the file does not exist yet."""
        note = ensure_private(self.path, "--statedb", create=False)  # revoked ids: 0600
        if note:
            log.warning("%s", note)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return WorkerState()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot read it: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._error(f"not JSON ({exc})") from None
        return self._decode(data)

    def save(self, revoked: RevokedSet, *, clock: int = 0) -> None:
        """Write the ids (with their ages), the stamps and the clock, atomically."""
        data = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "clock": int(clock),
            "revoked": [[task_id, added] for task_id, added in revoked.records()],
            "revoked_stamps": revoked.stamps(),
        }
        try:
            payload = json.dumps(data, separators=(",", ":"))
        except (TypeError, ValueError) as exc:  # a stamp value JSON can't carry
            raise self._error(f"cannot encode the state: {exc}") from None
        try:
            atomic_write(self.path, payload)
        except OSError as exc:
            raise StateFileError(
                f"cannot write the worker state file {self.path}: {exc}",
                hint="check the directory exists and is writable",
            ) from None

    def _error(self, why: str) -> StateFileError:
        return StateFileError(
            f"worker state file {self.path} is not usable: {why}",
            hint="move it away or delete it to start with no saved revokes",
        )

    def _decode(self, data: Any) -> WorkerState:
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise self._error("not an amqptool worker state file")
        if data.get("version") != STATE_VERSION:
            raise self._error(f"unsupported version {data.get('version')!r}")
        raw_revoked = data.get("revoked", [])
        raw_stamps = data.get("revoked_stamps", {})
        clock = data.get("clock", 0)
        if not isinstance(raw_revoked, list) or not isinstance(raw_stamps, dict):
            raise self._error("'revoked' must be a list and 'revoked_stamps' an object")
        if not isinstance(clock, int) or isinstance(clock, bool):
            raise self._error("'clock' must be an integer")
        revoked: list[tuple[str, float]] = []
        for rec in raw_revoked:
            if (
                not isinstance(rec, list)
                or len(rec) != 2
                or not isinstance(rec[0], str)
                or not isinstance(rec[1], int | float)
                or isinstance(rec[1], bool)
            ):
                raise self._error(f"bad revoked entry {rec!r}")
            revoked.append((rec[0], float(rec[1])))
        stamps = {str(k): (list(v) if isinstance(v, list) else [v]) for k, v in raw_stamps.items()}
        return WorkerState(revoked=revoked, stamps=stamps, clock=clock)
