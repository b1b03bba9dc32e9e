"""One worker in detail, through remote control: pool, queues, registered tasks, stats, config,
system; and the actions of the worker screen (pool size, consumers, rate and time limits).

:func:`fetch_worker_info` asks one node ``stats``, ``active_queues``, ``registered`` (with rate
and time limits), ``conf`` and ``report``, each with its own timeout, and never raises: a section
that did not answer says why. Replies come from the network, so every string is made visible
(:mod:`amqptool.monitor.core.clean`). Pure core: the control port is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from amqptool.monitor.actions import Action, ControlPort, perform
from amqptool.monitor.core.clean import clean, visible

__all__ = [
    "RegisteredTask",
    "WorkerInfo",
    "add_consumer_action",
    "cancel_consumer_action",
    "fetch_worker_info",
    "parse_registered",
    "pool_action",
    "time_limit_action",
    "worker_rate_limit_action",
]

TASK_ITEMS = ["rate_limit", "time_limit", "soft_time_limit"]
_REGISTERED = re.compile(r"^(?P<name>\S+)(?: \[(?P<items>.*)\])?$")
_ITEM = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class RegisteredTask:
    name: str
    rate_limit: str = "-"
    time_limit: str = "-"
    soft_time_limit: str = "-"


@dataclass
class WorkerInfo:
    """What the worker screen shows; ``errors`` by section for those that did not answer."""

    node: str
    pool: list[tuple[str, str]] = field(default_factory=list)
    queues: list[tuple[str, str, str]] = field(default_factory=list)  # name, exchange, key
    registered: list[RegisteredTask] = field(default_factory=list)
    stats: list[tuple[str, str]] = field(default_factory=list)
    config: list[tuple[str, str]] = field(default_factory=list)
    system: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def queue_names(self) -> list[str]:
        return [q[0] for q in self.queues]


def parse_registered(lines: Any) -> list[RegisteredTask]:
    """``registered`` replies: ``"name [rate_limit=10/m time_limit=None]"`` per task."""
    out: list[RegisteredTask] = []
    for line in lines if isinstance(lines, list) else []:
        match = _REGISTERED.match(str(line))
        if match is None:
            continue
        items = dict(_ITEM.findall(match.group("items") or ""))
        values = {k: _none_dash(items.get(k)) for k in TASK_ITEMS}
        out.append(RegisteredTask(visible(match.group("name")), **values))
    return out


def _none_dash(value: str | None) -> str:
    return "-" if value in (None, "None") else visible(str(value))


def _text(value: Any) -> str:
    return clean(value if isinstance(value, str) else repr(value), 200)


def _pool_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
    assert isinstance(pool, dict)
    processes = pool.get("processes")
    rows = [
        ("kind", _text(pool.get("implementation", "?"))),
        ("size", _text(pool.get("max-concurrency", "?"))),
        (
            "processes",
            " ".join(_text(p) for p in processes) if isinstance(processes, list) else "-",
        ),
        ("prefetch", _text(stats.get("prefetch_count", "?"))),
    ]
    for key in ("max-tasks-per-child", "timeouts", "put-guarded-by-semaphore"):
        if key in pool:
            rows.append((key, _text(pool[key])))
    return rows


def _stats_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in ("pid", "uptime", "clock"):
        if key in stats:
            rows.append((key, _text(stats[key])))
    total = stats.get("total")
    if isinstance(total, dict):
        rows.append(("tasks run", str(sum(v for v in total.values() if isinstance(v, int)))))
        rows.extend((f"  {visible(str(k))}", _text(v)) for k, v in sorted(total.items()))
    broker = stats.get("broker")
    if isinstance(broker, dict):
        keys = ("hostname", "port", "virtual_host", "transport", "heartbeat", "ssl")
        rows.extend((f"broker {k}", _text(broker[k])) for k in keys if k in broker)
    rusage = stats.get("rusage")
    if isinstance(rusage, dict):
        shown = ("utime", "stime", "maxrss", "nvcsw", "nivcsw")
        rows.extend((f"rusage {k}", _text(rusage[k])) for k in shown if k in rusage)
    return rows


def _ask(
    control: ControlPort, node: str, method: str, timeout: float, **arguments: Any
) -> tuple[Any, str | None]:
    outcome = perform(
        control,
        Action(
            title=method, method=method, arguments=arguments, destination=[node], timeout=timeout
        ),
    )
    if node not in outcome.replies:
        return None, visible(outcome.message)
    reply = outcome.replies[node]
    if isinstance(reply, dict) and "error" in reply and len(reply) == 1:
        return None, _text(reply["error"])
    return reply, None


def fetch_worker_info(control: ControlPort, node: str, timeout: float = 2.0) -> WorkerInfo:
    """Everything the worker screen shows, each section asked with its own ``timeout``."""
    info = WorkerInfo(node)
    stats, error = _ask(control, node, "stats", timeout)
    if isinstance(stats, dict):
        info.pool = _pool_rows(stats)
        info.stats = _stats_rows(stats)
    else:
        info.errors["pool"] = info.errors["stats"] = error or "not an object"
    queues, error = _ask(control, node, "active_queues", timeout)
    if isinstance(queues, list):
        for q in queues:
            if isinstance(q, dict):
                exchange = q.get("exchange")
                ex_name = exchange.get("name", "") if isinstance(exchange, dict) else ""
                info.queues.append(
                    (_text(q.get("name", "?")), _text(ex_name), _text(q.get("routing_key", "")))
                )
    else:
        info.errors["queues"] = error or "not a list"
    registered, error = _ask(control, node, "registered", timeout, taskinfoitems=TASK_ITEMS)
    if isinstance(registered, list):
        info.registered = parse_registered(registered)
    else:
        info.errors["registered"] = error or "not a list"
    conf, error = _ask(control, node, "conf", timeout)
    if isinstance(conf, dict):
        info.config = [(visible(str(k)), _text(v)) for k, v in sorted(conf.items())]
    else:
        info.errors["config"] = error or "not an object"
    report, error = _ask(control, node, "report", timeout)
    if isinstance(report, dict) and "ok" in report:
        info.system = clean(str(report["ok"]), 8000, multiline=True).strip()
    else:
        info.errors["system"] = error or "no report"
    return info


# --------------------------------------------------------------------------- actions


def pool_action(node: str, delta: int) -> Action:
    method = "pool_grow" if delta > 0 else "pool_shrink"
    n = abs(delta)
    confirm = None
    if delta < 0:
        confirm = f"Really shrink the pool of {node} by {n}? (a busy slot finishes its task first)"
    return Action(
        title=f"{method} {n} on {node}",
        method=method,
        arguments={"n": n},
        destination=[node],
        confirm=confirm,
    )


def add_consumer_action(node: str, queue: str) -> Action:
    return Action(
        title=f"add consumer {queue} on {node}",
        method="add_consumer",
        arguments={"queue": queue},
        destination=[node],
    )


def cancel_consumer_action(node: str, queue: str) -> Action:
    return Action(
        title=f"cancel consumer {queue} on {node}",
        method="cancel_consumer",
        arguments={"queue": queue},
        destination=[node],
        confirm=f"Really stop {node} consuming from {queue}? Its tasks there wait for others.",
    )


def worker_rate_limit_action(node: str, task: str, rate: str) -> Action:
    rate = "".join(rate.split())
    return Action(
        title=f"rate limit {task} = {rate} on {node}",
        method="rate_limit",
        arguments={"task_name": task, "rate_limit": rate},
        destination=[node],
    )


def time_limit_action(node: str, task: str, soft: float, hard: float) -> Action:
    return Action(
        title=f"time limit {task} soft={soft:g}s hard={hard:g}s on {node}",
        method="time_limit",
        arguments={"task_name": task, "soft": soft, "hard": hard},
        destination=[node],
        confirm=f"Really set the time limits of {task} on {node} to soft {soft:g}s, hard"
        f" {hard:g}s? Running tasks past the hard limit are killed.",
    )
