"""Remote control commands the worker answers (docs/protocol.md §4.3, §4.6): one registry.

A command is a function ``handler(panel, **arguments) -> reply`` registered with
:func:`control_command`::

    from worker import control_command

    @control_command("task_totals", kind="inspect", signature="[task_name]")
    def task_totals(panel, task_name=None):
        '''How many tasks of each name this worker has received.'''
        totals = dict(panel.target.state.total)
        return totals if task_name is None else {"ok": totals.get(task_name, 0)}

in the task module (``-A``); then ``amqptool control raw task_totals task_name=app.add`` (or
``ControlClient.call("task_totals", {...})``, or Celery's ``app.control.broadcast``) calls it.

Rules (the same for built-in and user commands):

- ``arguments`` from the request become keyword arguments; keys the handler does not accept
  are dropped (unless it takes ``**kwargs``), so newer clients can send more.
- An unknown command, arguments that don't fit, or a handler that raises gives the reply
  ``{"error": "<repr of the exception>"}``; the worker goes on.
- A handler returning :data:`NO_REPLY` sends nothing (``shutdown``).
- Handlers run on the broker thread, between deliveries: keep them quick. They are answered
  while every pool slot is busy, because task code never runs on that thread.

``panel.target`` is the running worker seen through :class:`ControlTarget`. A command named in
the worker's ``--disable-control`` (``panel.disabled``) is refused with an error reply. The
administrative commands (``stats``, ``conf``, ``query_task``, ``add_consumer``, ``pool_grow`` ...)
live in :mod:`worker.control.admin`, the scheduling ones (``revoke``, ``terminate``, ``hello``,
``rate_limit``, ``time_limit``, ``scheduled`` ...) in :mod:`worker.control.scheduling`, registered
the same way.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from amqptool.codec.events import LamportClock
from amqptool.errors import UsageError
from worker.config import WorkerConfig
from worker.policy.queues import QueueSpec
from worker.policy.worker_state import WorkerState
from worker.task.define import Task

__all__ = [
    "COMMANDS",
    "NO_REPLY",
    "ControlCommand",
    "ControlTarget",
    "EventSwitch",
    "Panel",
    "control_command",
    "disabled_commands",
    "dispatch",
    "lookup",
]

log = logging.getLogger("worker.control")

NO_REPLY: Any = object()
"""Returned by a handler that must not reply (``shutdown``)."""

Handler = Callable[..., Any]


class EventSwitch(Protocol):
    """The part of the worker's event sender that control commands use."""

    task_events: bool

    def flush(self) -> None: ...

    def forced_heartbeat(self) -> dict[str, Any]: ...


class ControlTarget(Protocol):
    """What control handlers may read and do on the running worker (broker thread only)."""

    nodename: str
    config: WorkerConfig
    clock: LamportClock
    state: WorkerState
    tasks: Mapping[str, Task]
    started_at: float

    @property
    def events(self) -> EventSwitch: ...

    def request_infos(self, which: str, *, safe: bool = False) -> list[dict[str, Any]]: ...

    def scheduled_infos(self, *, safe: bool = False) -> list[dict[str, Any]]: ...

    def queue_infos(self) -> list[dict[str, Any]]: ...

    def pool_stats(self) -> dict[str, Any]: ...

    def broker_stats(self) -> dict[str, Any]: ...

    def prefetch_count(self) -> int: ...

    def request_shutdown(self, reason: str) -> None: ...

    def rate_limit_changed(self, task_name: str) -> None: ...

    def add_queue(self, spec: QueueSpec) -> bool: ...

    def cancel_queue(self, name: str) -> bool: ...

    def resize_pool(self, delta: int) -> None: ...

    def revoked_changed(self) -> None: ...

    def terminate(self, task_ids: Sequence[str], signum: int) -> list[str]: ...

    def terminate_stamped(
        self, headers: Mapping[str, list[Any]], signum: int
    ) -> dict[str, set[Any]]: ...


@dataclass
class Panel:
    target: ControlTarget
    disabled: frozenset[str] = frozenset()  # canonical names refused (--disable-control)


@dataclass(frozen=True)
class ControlCommand:
    name: str
    handler: Handler
    kind: Literal["control", "inspect"] = "control"
    aliases: tuple[str, ...] = ()
    signature: str = ""
    help: str = ""
    _accepts: frozenset[str] | None = field(default=None, compare=False)

    def call(self, panel: Panel, arguments: Mapping[str, Any]) -> Any:
        kwargs = dict(arguments)
        if self._accepts is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in self._accepts}
        return self.handler(panel, **kwargs)


COMMANDS: dict[str, ControlCommand] = {}
_ALIASES: dict[str, str] = {}


def control_command(
    name: str | None = None,
    *,
    kind: Literal["control", "inspect"] = "control",
    aliases: tuple[str, ...] = (),
    signature: str = "",
    help: str | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler(panel, **kwargs)`` as a remote control command (see module doc)."""

    def register(handler: Handler) -> Handler:
        cmd_name = name or handler.__name__
        params = list(inspect.signature(handler).parameters.values())[1:]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        accepts = None if takes_any else frozenset(p.name for p in params)
        doc = help if help is not None else (inspect.getdoc(handler) or "").split("\n")[0]
        cmd = ControlCommand(cmd_name, handler, kind, tuple(aliases), signature, doc, accepts)
        COMMANDS[cmd_name] = cmd
        for alias in aliases:
            _ALIASES[alias] = cmd_name
        return handler

    return register


def lookup(method: str) -> ControlCommand | None:
    return COMMANDS.get(method) or COMMANDS.get(_ALIASES.get(method, ""))


def disabled_commands(names: Iterable[str]) -> frozenset[str]:
    """``--disable-control`` names (aliases allowed) as canonical names; UsageError if unknown."""
    out = set()
    for name in names:
        cmd = lookup(name)
        if cmd is None:
            raise UsageError(
                f"--disable-control: unknown control command {name!r}",
                hint=f"known: {', '.join(sorted(COMMANDS))}",
            )
        out.add(cmd.name)
    return frozenset(out)


def dispatch(panel: Panel, method: str, arguments: Mapping[str, Any]) -> Any:
    """Run a command; errors become ``{"error": repr}`` replies. Never raises."""
    cmd = lookup(method)
    if cmd is None:
        return {"error": repr(KeyError(method))}
    if cmd.name in panel.disabled:
        log.warning("refused control command %s (disabled on this worker)", method)
        return {"error": f"{cmd.name} is disabled on this worker (--disable-control)"}
    if not isinstance(arguments, Mapping):
        return {"error": repr(TypeError(f"arguments must be an object, not {arguments!r}"))}
    try:
        return cmd.call(panel, arguments)
    except Exception as exc:  # a handler's failure is the caller's answer, not ours
        log.warning("control command %s failed: %r", method, exc)
        return {"error": repr(exc)}


# --------------------------------------------------------------------------- built-ins


@control_command(kind="inspect")
def ping(panel: Panel) -> Any:
    """Reply pong."""
    return {"ok": "pong"}


@control_command(kind="inspect")
def clock(panel: Panel) -> Any:
    """The worker's Lamport clock."""
    return {"clock": panel.target.clock.value}


@control_command()
def heartbeat(panel: Panel) -> Any:
    """Send a worker-heartbeat event now."""
    panel.target.events.forced_heartbeat()
    return None


@control_command(signature="[msg]")
def shutdown(panel: Panel, msg: str = "") -> Any:
    """Warm shutdown (no reply)."""
    log.warning("Got shutdown from remote%s", f": {msg}" if msg else "")
    panel.target.request_shutdown("remote control shutdown")
    return NO_REPLY


@control_command()
def enable_events(panel: Panel) -> Any:
    """Start sending task events."""
    events = panel.target.events
    if events.task_events:
        return {"ok": "task events already enabled"}
    events.task_events = True
    log.info("Events of group {task} enabled by remote.")
    return {"ok": "task events enabled"}


@control_command()
def disable_events(panel: Panel) -> Any:
    """Stop sending task events."""
    events = panel.target.events
    if not events.task_events:
        return {"ok": "task events already disabled"}
    events.flush()
    events.task_events = False
    log.info("Events of group {task} disabled by remote.")
    return {"ok": "task events disabled"}


TASK_INFO_ITEMS = ("exchange", "routing_key", "rate_limit")  # Celery's default items


def _task_info(target: ControlTarget, name: str, task: Any, item: str) -> Any:
    """A task attribute as this worker applies it (run-time rate and time limits included)."""
    if item == "rate_limit":
        return target.state.rate_limits.get(name, task.rate_limit)
    if item in ("time_limit", "soft_time_limit") and name in target.state.time_limits:
        hard, soft = target.state.time_limits[name]
        value = hard if item == "time_limit" else soft
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if hasattr(task, item):
        return getattr(task, item)
    return getattr(getattr(task, "celery_task", None), item, None)  # a Celery task's own


@control_command(kind="inspect", aliases=("dump_tasks",), signature="[attr1 [attr2]]")
def registered(panel: Panel, taskinfoitems: Any = None, builtins: bool = False) -> Any:
    """The registered task names, annotated as Celery annotates them (``add [rate_limit=10/m]``;
    default items: exchange, routing_key, rate_limit)."""
    items = taskinfoitems or TASK_INFO_ITEMS
    if isinstance(items, str):
        items = (items,)
    if not isinstance(items, list | tuple) or len(items) > 20:
        raise ValueError("taskinfoitems must be a list of at most 20 attribute names")
    if not all(isinstance(k, str) and k.isidentifier() for k in items):
        raise ValueError("taskinfoitems must be attribute names")
    items = [item for item in items if not item.startswith("_")]
    target = panel.target
    out = []
    for name in sorted(target.tasks):
        if name.startswith("celery.") and not builtins:
            continue
        task = target.tasks[name]
        values = {item: _task_info(target, name, task, item) for item in items}
        shown = " ".join(f"{k}={v}" for k, v in values.items() if v is not None)
        out.append(f"{name} [{shown}]" if shown else name)
    return out


@control_command(kind="inspect", aliases=("dump_active",), signature="[safe]")
def active(panel: Panel, safe: bool = False) -> Any:
    """The tasks executing now."""
    return panel.target.request_infos("active", safe=bool(safe))


@control_command(kind="inspect", aliases=("dump_reserved",), signature="[safe]")
def reserved(panel: Panel, safe: bool = False) -> Any:
    """The tasks received and waiting for a pool slot (not ETA ones)."""
    return panel.target.request_infos("reserved", safe=bool(safe))
