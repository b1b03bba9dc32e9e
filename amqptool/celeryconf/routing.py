"""Where a task message goes: Celery's router over ``task_routes``, ``task_queues`` and the
default queue settings (pure; the client declares and publishes what it says).

``task_routes`` is what Celery accepts: a dict (exact names, ``*`` globs, compiled regexes as
keys; a route is a dict of options or a queue name), a router function
``(name, args, kwargs, options, task=None)`` or its dotted name, or a list/tuple of those
(the first route found wins). Options given with the call (``queue=``, ``exchange=``,
``routing_key=``) win over the route's. A queue is looked up in ``task_queues`` (kombu
``Queue`` objects); a queue missing from there is made as Celery makes it (a direct exchange and
a durable queue, both named after it) unless ``task_create_missing_queues`` is off, when it is
an error. Publishing then follows Celery: a direct exchange without both an exchange and a
routing key becomes the default exchange with the queue's name as the key.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amqptool.errors import UsageError

__all__ = ["Destination", "QueueDecl", "Router"]

Route = Callable[..., Any]


@dataclass(frozen=True)
class QueueDecl:
    """How to declare a queue (and its exchange and binding) before publishing to it."""

    name: str
    exchange: str
    exchange_type: str = "direct"
    routing_key: str = ""
    arguments: dict[str, Any] | None = None
    durable: bool = True
    auto_delete: bool = False

    @classmethod
    def of(cls, queue: Any) -> QueueDecl:
        """A kombu ``Queue`` (duck-typed) as a declaration."""
        exchange = getattr(queue, "exchange", None)
        return cls(
            str(queue.name),
            exchange=str(getattr(exchange, "name", "") or ""),
            exchange_type=str(getattr(exchange, "type", None) or "direct"),
            routing_key=str(getattr(queue, "routing_key", "") or queue.name),
            arguments=dict(getattr(queue, "queue_arguments", None) or {}) or None,
            durable=bool(getattr(queue, "durable", True)),
            auto_delete=bool(getattr(queue, "auto_delete", False)),
        )


@dataclass(frozen=True)
class Destination:
    exchange: str
    routing_key: str
    queue: QueueDecl | None  # declared first (None: an exchange named without a queue)

    @property
    def target(self) -> dict[str, str]:
        """``exchange`` and ``routing_key``, as keyword arguments."""
        return {"exchange": self.exchange, "routing_key": self.routing_key}


class _MapRoute:
    def __init__(self, table: Mapping[Any, Any] | Sequence[tuple[Any, Any]]) -> None:
        items = table.items() if isinstance(table, Mapping) else table
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, value in items:
            if isinstance(key, re.Pattern):
                self.patterns.append((key, value))
            elif "*" in key:
                self.patterns.append((re.compile(fnmatch.translate(key)), value))
            else:
                self.exact[key] = value

    def __call__(self, name: str, *_args: Any, **_kw: Any) -> dict[str, Any] | None:
        if name in self.exact:
            return _as_options(self.exact[name])
        for regex, value in self.patterns:
            if regex.match(name):
                return _as_options(value)
        return None


def _as_options(route: Any) -> dict[str, Any]:
    return {"queue": route} if isinstance(route, str) else dict(route)


def _by_name(path: str) -> Route:
    module, _, attr = path.replace(":", ".").rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"task_routes: cannot import router {path!r}: {exc}") from exc
    return found() if hasattr(found, "route_for_task") else found  # type: ignore[no-any-return]  # user code


def _prepare(routes: Any) -> list[Any]:
    if routes is None:
        return []
    if not isinstance(routes, list | tuple):
        routes = (routes,)
    out: list[Any] = []
    for route in routes:
        if isinstance(route, Mapping | list | tuple):
            out.append(_MapRoute(route))
        elif isinstance(route, str):
            out.append(_by_name(route))
        else:
            out.append(route)
    return out


class Router:
    """Celery's router for one configuration (a mapping of Celery's setting names)."""

    def __init__(
        self, conf: Mapping[str, Any] | None = None, *, default_queue: str | None = None
    ) -> None:
        """``default_queue`` (when given) wins over ``task_default_queue``."""
        conf = dict(conf or {})
        if default_queue is not None:
            conf["task_default_queue"] = default_queue
        self.routes = _prepare(conf.get("task_routes"))
        self.create_missing = bool(conf.get("task_create_missing_queues", True))
        self.default_queue = str(conf.get("task_default_queue") or "celery")
        self.default_exchange = str(conf.get("task_default_exchange") or self.default_queue)
        self.default_type = str(conf.get("task_default_exchange_type") or "direct")
        self.default_key = str(conf.get("task_default_routing_key") or self.default_queue)
        self.queues: dict[str, QueueDecl] = {}
        for queue in conf.get("task_queues") or ():
            decl = QueueDecl.of(queue)
            self.queues[decl.name] = decl
        if not self.queues:
            quorum = conf.get("task_default_queue_type") == "quorum"
            self.queues[self.default_queue] = QueueDecl(
                self.default_queue,
                self.default_exchange,
                self.default_type,
                self.default_key,
                {"x-queue-type": "quorum"} if quorum else None,
            )

    def queue(self, name: str) -> QueueDecl:
        found = self.queues.get(name)
        if found is not None:
            return found
        if not self.create_missing:
            raise UsageError(
                f"queue {name!r} missing from task_queues",
                hint="add it to task_queues, or turn task_create_missing_queues on",
            )
        return QueueDecl(name, name, "direct", name)

    def _lookup(self, name: str, args: Any, kwargs: Any, options: dict[str, Any]) -> Any:
        for router in self.routes:
            if hasattr(router, "route_for_task"):
                route = router.route_for_task(name, args, kwargs)
            else:
                route = router(name, args, kwargs, options, task=None)
            if route is not None:
                return route
        return None

    def route(
        self,
        name: str,
        args: Any = (),
        kwargs: Any = None,
        *,
        queue: str | None = None,
        exchange: str | None = None,
        routing_key: str | None = None,
    ) -> Destination:
        """The destination of one call (explicit options over routes over defaults)."""
        given = {"queue": queue, "exchange": exchange, "routing_key": routing_key}
        options = {k: v for k, v in given.items() if v is not None}
        route = self._lookup(name, args, kwargs or {}, dict(options)) if self.routes else None
        merged = _as_options(route) if route else {}
        if not route and "queue" not in options:
            merged["queue"] = self.default_queue
        merged.update(options)
        decl = self.queue(str(merged["queue"])) if merged.get("queue") else None
        return self._target(decl, merged.get("exchange"), merged.get("routing_key"))

    def _target(self, decl: QueueDecl | None, exchange: Any, key: Any) -> Destination:
        kind = decl.exchange_type if decl is not None else "direct"
        if (not exchange or not key) and kind == "direct" and decl is not None:
            return Destination("", decl.name, decl)
        if exchange is None:
            assert decl is not None  # a route without queue names an exchange
            exchange = decl.exchange or self.default_exchange
            key = key or decl.routing_key or self.default_key
        return Destination(str(exchange), str(key or ""), decl)
