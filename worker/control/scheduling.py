"""Remote control commands that decide when and whether tasks run (docs/protocol.md §4.6, §5.4-5.6).

Registered in :mod:`worker.control.registry`'s one table, with Celery's names, arguments and
replies:

=============================  =======  ======================================================
``revoke``                     control  ids join the revoked set (never started; REVOKED when
                                        they come up); ``terminate``: signal the pool process
                                        running one (prefork), REVOKED ``"terminated"``
``terminate``                  control  ``revoke`` with terminate, ``signal`` first
``revoke_by_stamped_headers``  control  revoke every task whose stamped header has one of the
                                        values; ``terminate`` as above
``revoked`` (dump_revoked)     inspect  the revoked ids, oldest first
``hello``                      inspect  mingle: merge the sender's revoked ids, answer ours and
                                        our clock (null to our own name)
``rate_limit``                 control  set/remove a task type's token bucket at run time
``time_limit``                 control  set a task type's hard/soft limits at run time
``scheduled`` (dump_schedule)  inspect  the tasks waiting for their ETA (held or parked)
=============================  =======  ======================================================

Terminating needs the prefork pool: a thread cannot be killed, so on the threads and solo
pools ``terminate`` only revokes (the running task finishes) and the reply is an error saying
the pool cannot terminate.
"""

from __future__ import annotations

import logging
import signal as signals
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from worker.control.arguments import optional_seconds, signal_in_range, task_ids
from worker.control.arguments import task_name as check_task_name
from worker.control.registry import Panel, control_command
from worker.policy.rate_limit import parse_rate, rate_disables

__all__ = ["signal_number"]

log = logging.getLogger("worker.control")


def signal_number(name: Any) -> int:
    """Celery's signal names (``TERM``, ``SIGKILL``) or a number; ValueError when unknown."""
    if name is None or name == "":
        return int(signals.SIGTERM)
    if isinstance(name, int) and not isinstance(name, bool):
        return signal_in_range(name)
    if not isinstance(name, str) or len(name) > 16:
        raise ValueError(f"unknown signal {name!r}"[:100])
    text = name.strip().upper()
    if text.isascii() and text.isdigit():
        return signal_in_range(int(text))
    if not text.startswith("SIG"):
        text = "SIG" + text
    number = getattr(signals, text, None)
    if not isinstance(number, int):
        raise ValueError(f"unknown signal {name!r}")
    return int(number)


def _ids(task_id: Any) -> list[str]:
    return task_ids(task_id)


@control_command(signature="<task_id> [task_id ...]")
def revoke(panel: Panel, task_id: Any = None, terminate: bool = False, signal: Any = None) -> Any:
    """Revoke tasks by id (terminate=True also stops a running one, prefork pool)."""
    target = panel.target
    ids = _ids(task_id)
    signum = signal_number(signal) if terminate else 0
    target.state.revoked.update(ids, time.time())
    target.revoked_changed()
    if terminate:
        done = target.terminate(ids, signum)
        pool = target.config.pool
        if not done and pool != "prefork":
            return {
                "error": f"terminate: the {pool} pool cannot stop a running task; "
                + ", ".join(ids)
                + " only flagged as revoked (a running one runs to its end)"
            }
        if not done:
            return {"ok": "terminate: tasks unknown"}
        return {"ok": "terminate: " + ", ".join(done)}
    log.info("Tasks flagged as revoked: %s", ", ".join(ids))
    return {"ok": "tasks {" + ", ".join(repr(i) for i in ids) + "} flagged as revoked"}


@control_command(signature="<signal> [id1 [id2 [... [idN]]]]")
def terminate(panel: Panel, signal: Any = None, task_id: Any = None) -> Any:
    """Revoke tasks by id and stop them where they run (prefork pool)."""
    return revoke(panel, task_id, terminate=True, signal=signal)


@control_command(signature="[key1=value1 [key2=value2 [... [keyN=valueN]]]]")
def revoke_by_stamped_headers(
    panel: Panel, headers: Any = None, terminate: bool = False, signal: Any = None
) -> Any:
    """Revoke every task stamped with one of these header values (a dict, or "k=v" strings)."""
    target = panel.target
    signum = signal_number(signal)
    if isinstance(headers, list):
        if not all(isinstance(h, str) and "=" in h for h in headers):
            raise ValueError("headers must be an object or a list of 'key=value' strings")
        headers = dict(h.split("=", 1) for h in headers)
    if not isinstance(headers, Mapping) or not headers:
        raise TypeError(f"headers must be an object or a list of 'k=v', not {headers!r}"[:200])
    if len(headers) > 100 or not all(isinstance(k, str) for k in headers):
        raise ValueError("headers: at most 100 keys, each a string")
    parsed = target.state.revoked.revoke_stamps(headers)
    target.revoked_changed()
    if not terminate:
        return {"ok": f"headers {headers} flagged as revoked, but not terminated"}
    hit = target.terminate_stamped(parsed, signum)
    if not hit:
        return {"ok": f"headers {headers} were not terminated"}
    mapping: defaultdict[str, set[Any]] = defaultdict(set)
    for key, values in hit.items():
        mapping[key].update(values)
    return {"ok": f"headers {mapping} revoked"}


@control_command(kind="inspect", aliases=("dump_revoked",))
def revoked(panel: Panel) -> Any:
    """The revoked task ids, oldest first."""
    return panel.target.state.revoked.ids()


@control_command(kind="inspect", signature="<from_node> [revoked]")
def hello(panel: Panel, from_node: str = "", revoked: Any = None) -> Any:
    """Mingle: merge the sender's revoked ids, answer ours and our clock (null to ourselves)."""
    target = panel.target
    if not isinstance(from_node, str) or len(from_node) > 255 or not from_node.isprintable():
        raise ValueError("from_node must be a node name")
    if from_node == target.nodename:
        return None
    log.info("sync with %s", from_node)
    now = time.time()
    if target.state.revoked.merge(revoked, now):
        target.revoked_changed()
    return target.state.revoked.hello_reply(target.clock.forward(), now)


@control_command(signature="<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>")
def rate_limit(panel: Panel, task_name: str, rate_limit: Any) -> Any:
    """Set a task type's rate limit on this worker (0 or empty removes it)."""
    target = panel.target
    check_task_name(task_name)
    try:
        parse_rate(rate_limit)
    except ValueError as exc:  # its text is Celery's: "Invalid rate limit string: ..."
        return {"error": str(exc)}
    if task_name not in target.tasks:
        log.error("Rate limit attempt for unknown task %s", task_name)
        return {"error": "unknown task"}
    target.state.rate_limits[task_name] = rate_limit
    target.rate_limit_changed(task_name)
    if rate_disables(rate_limit):
        log.info("Rate limits disabled for tasks of type %s", task_name)
        return {"ok": "rate limit disabled successfully"}
    log.info("New rate limit for tasks of type %s: %s.", task_name, rate_limit)
    return {"ok": "new rate limit set successfully"}


@control_command(signature="<task_name> <soft_secs> [hard_secs]")
def time_limit(panel: Panel, task_name: str = "", hard: Any = None, soft: Any = None) -> Any:
    """Set a task type's hard and soft time limits on this worker (null: none)."""
    target = panel.target
    check_task_name(task_name)
    limits = (optional_seconds(hard, "hard"), optional_seconds(soft, "soft"))
    if task_name not in target.tasks:
        log.error("Change time limit attempt for unknown task %s", task_name)
        return {"error": "unknown task"}
    target.state.time_limits[task_name] = limits
    log.info("New time limits for tasks of type %s: soft=%s hard=%s", task_name, soft, hard)
    return {"ok": "time limits set successfully"}


@control_command(kind="inspect", aliases=("dump_schedule",), signature="[safe]")
def scheduled(panel: Panel, safe: bool = False) -> Any:
    """The tasks waiting for their ETA: held here, or parked on the broker by this worker."""
    return panel.target.scheduled_infos(safe=bool(safe))
