"""``--statedb FILE``: the revoked ids (and revokes by stamped header) kept across restarts.

Loaded when the worker is built (a file that is not a state file is a one-line
:class:`~worker.policy.revoked.StateFileError` before anything starts); saved a second after a
change (revoke, hello, mingle: at most once a second, on the broker thread's timer) and when
the worker stops. The file is replaced atomically (:class:`~worker.policy.revoked.StateDB`), so a
crash leaves the old or the new one. Celery keeps ``--statedb`` in a shelve; ours is JSON.
"""

from __future__ import annotations

import logging
import time

from amqptool.codec.events import LamportClock
from amqptool.errors import AmqpToolError
from worker.policy.revoked import RevokedSet, StateDB
from worker.runtime.timer import Timer, TimerEntry

__all__ = ["SAVE_DELAY", "RevokedKeeper"]

log = logging.getLogger("worker.consumer")

SAVE_DELAY = 1.0


class RevokedKeeper:
    def __init__(self, path: str, revoked: RevokedSet, clock: LamportClock, timer: Timer) -> None:
        self.db = StateDB(path)
        self.revoked = revoked
        self.clock = clock
        self.timer = timer
        self._entry: TimerEntry | None = None
        saved = self.db.load()
        saved.restore_into(revoked, time.time())
        clock.adjust(saved.clock)

    def changed(self) -> None:
        """Save soon (once for any number of changes within a second)."""
        if self._entry is None:
            self._entry = self.timer.call_at(time.monotonic() + SAVE_DELAY, self.save)

    def save(self) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        self.revoked.purge(time.time())
        self.db.save(self.revoked, clock=self.clock.value)

    def close(self) -> None:
        """The worker stops: save now (a failure is logged, not raised)."""
        try:
            self.save()
        except AmqpToolError as exc:
            log.error("%s", exc)
