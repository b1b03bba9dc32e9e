"""Exchange and queue names the shell has seen or declared (fed to completion). Pure."""

from __future__ import annotations

import threading

__all__ = ["BUILTIN_EXCHANGES", "KnownNames"]

BUILTIN_EXCHANGES = ("amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic")


class KnownNames:
    """Two small name sets; safe to read from the completer's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: set[str] = set(BUILTIN_EXCHANGES)
        self._queues: set[str] = set()
        self._listed_exchanges: frozenset[str] = frozenset()  # from the management API
        self._listed_queues: frozenset[str] = frozenset()

    def add_exchange(self, name: str) -> None:
        if name:
            with self._lock:
                self._exchanges.add(name)

    def add_queue(self, name: str) -> None:
        if name:
            with self._lock:
                self._queues.add(name)

    def forget_exchange(self, name: str) -> None:
        with self._lock:
            self._exchanges.discard(name)
            self._listed_exchanges = self._listed_exchanges - {name}

    def forget_queue(self, name: str) -> None:
        with self._lock:
            self._queues.discard(name)
            self._listed_queues = self._listed_queues - {name}

    def replace_listed(self, queues: list[str], exchanges: list[str]) -> None:
        """Swap in the broker's current names (from a listing) in one step."""
        listed_q = frozenset(n for n in queues if n)
        listed_x = frozenset(n for n in exchanges if n)
        with self._lock:
            self._listed_queues, self._listed_exchanges = listed_q, listed_x

    def exchanges(self) -> list[str]:
        with self._lock:
            return sorted(self._exchanges | self._listed_exchanges)

    def queues(self) -> list[str]:
        with self._lock:
            return sorted(self._queues | self._listed_queues)
