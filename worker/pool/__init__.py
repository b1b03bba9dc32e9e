"""Where task code runs: the Pool protocol, the threads pools, prefork, one task's execution.

Rule: never the broker. A pool takes jobs from the broker thread and hands reports back
through ``notify``; it imports ``worker.task`` and ``worker.policy``, never ``worker.runtime``
or ``amqptool.transport`` (rpc:// results, acks and events are *described* in reports and sent
by the broker thread; results for a Redis/SQL backend are stored from here, as Celery does).

- :mod:`worker.pool.base`: the Pool protocol and the reports a pool sends;
- :mod:`worker.pool.threads`: the ``threads`` and ``solo`` pools;
- :mod:`worker.pool.prefork`: one forked child process per slot;
- :mod:`worker.pool.execute`: running one task (a Job in, an Outcome out);
- :mod:`worker.pool.callbacks`: the messages a finished task sends next (link, chain, errbacks);
- :mod:`worker.pool.orphans`: a prefork child dies with its parent (``PR_SET_PDEATHSIG``);
- :mod:`worker.pool.canvas`: applying signatures of any shape (task, group, chain, chord);
- :mod:`worker.pool.results`: storing results in a Redis/SQL backend, when the worker has one
  (a result store, never the broker); :mod:`worker.pool.result_writer`: the threads pools'
  Redis results written in batches by one thread, a job done only once stored;
  :mod:`worker.pool.finish`: where a state goes, chord
  parts, the steps of a failed chain;
- :mod:`worker.pool.errbacks`: errbacks called here in the ``(request, exc, traceback)`` form;
- :mod:`worker.pool.replace`: the messages of ``Task.replace()``;
- :mod:`worker.pool.builtins`: Celery's built-in tasks (``celery.chord_unlock``, ``celery.map``...);
- :mod:`worker.pool.celery_trace`: a Celery app's tasks, run through Celery's own tracer;
- :mod:`worker.pool.error_mail`: the 1.0 manual's error e-mails to the admins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.pool.base import Pool
from worker.task.define import Task

__all__ = ["POOLS", "create_pool", "pool_stats"]

POOLS = ("prefork", "threads", "solo")


def create_pool(
    name: str,
    tasks: Mapping[str, Task],
    concurrency: int,
    *,
    lookahead: int | None = None,
    max_tasks_per_child: int | None = None,
) -> Pool:
    """A pool by name; ``lookahead`` bounds the jobs queued beyond the running ones;
    ``max_tasks_per_child`` replaces a prefork child after that many tasks."""
    from worker.pool.threads import ThreadPool

    if name == "threads":
        return ThreadPool(tasks, concurrency, name="threads", lookahead=lookahead)
    if name == "solo":
        return ThreadPool(tasks, 1, name="solo", lookahead=lookahead)
    if name == "prefork":
        from worker.pool.prefork import PreforkPool

        # up to prefork.DEPTH jobs in each child's pipe (the running one and those behind it)
        return PreforkPool(tasks, concurrency, max_tasks_per_child=max_tasks_per_child)
    raise ValueError(f"unknown pool {name!r} (choose from {', '.join(POOLS)})")


def pool_stats(
    pool: Pool, max_tasks_per_child: int | None, limits: tuple[float | None, float | None]
) -> dict[str, Any]:
    """``stats``' ``pool`` object, with Celery's fields (``writes`` for prefork, as Celery's)."""
    stats: dict[str, Any] = {
        "implementation": pool.implementation,
        "max-concurrency": pool.concurrency,
        "processes": pool.processes(),
        "max-tasks-per-child": max_tasks_per_child or "N/A",
        "put-guarded-by-semaphore": False,
        "timeouts": [limits[0] or 0, limits[1] or 0],
    }
    writes = getattr(pool, "writes", None)  # prefork only, as in Celery
    if writes is not None:
        stats["writes"] = _writes(writes())
    return stats


def _writes(values: list[int]) -> dict[str, Any]:
    """Celery's ``writes`` block from the jobs written to each child."""
    total = sum(values)

    def share(value: float) -> str:
        return f"{(float(value) / total) if value else 0:.2f}"

    return {
        "total": total,
        "avg": share(total / len(values) if total and values else 0),
        "all": ", ".join(share(v) for v in values),
        "raw": ", ".join(str(v) for v in values),
        "strategy": "fair",
        "inqueues": {"total": len(values), "active": 0},
    }
