"""Celery's built-in tasks, registered in every worker under Celery's names.

Celery clients send some of them (``celery.chord_unlock`` for chords on backends without a
native counter, ``celery.starmap`` for ``chunks``, ``celery.map``/``celery.starmap`` for
``task.map``/``task.starmap``); the others are kept for older clients and for compatibility
(``celery.group``, ``celery.chain``, ``celery.chord``, ``celery.chunks``, ``celery.accumulate``,
``celery.backend_cleanup``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from amqptool.codec.results import EXCEPTION_STATES, READY_STATES
from worker.pool.canvas import Applied, apply_signature
from worker.pool.finish import fail_chord_body
from worker.pool.results import ResultStore
from worker.task.define import Task, registry, task
from worker.task.exceptions import NotRegistered

__all__ = ["BUILTIN_TASKS"]


def _publish(t: Task, applied: Applied) -> None:
    sink = t.request.sink
    if sink is None:
        raise RuntimeError(f"{t.name} can only run inside a worker")
    for env in applied.envelopes:
        sink.publish(env)


def _apply(t: Task, sig: Mapping[str, Any], extra_args: Sequence[Any]) -> Applied:
    req = t.request
    assert req.message is not None
    applied = apply_signature(sig, extra_args, req.message, req.queue or "celery", req.result_store)
    _publish(t, applied)
    return applied


def _callee(sig: Mapping[str, Any]) -> Task:
    name = str(sig.get("task"))
    found: Task | None = registry.get(name)
    if found is None:
        raise NotRegistered(name)
    return found


@task(name="celery.accumulate", bind=True)
def accumulate(self: Task, *args: Any, **kwargs: Any) -> Any:
    index = kwargs.get("index")
    return args[index] if index is not None else list(args)


@task(name="celery.map")
def xmap(task: Mapping[str, Any], it: Sequence[Any]) -> list[Any]:
    callee = _callee(task)
    return [callee(item) for item in it]


@task(name="celery.starmap")
def xstarmap(task: Mapping[str, Any], it: Sequence[Sequence[Any]]) -> list[Any]:
    callee = _callee(task)
    return [callee(*item) for item in it]


@task(name="celery.chunks", bind=True)
def chunks(self: Task, task: Mapping[str, Any], it: Sequence[Any], n: int) -> Any:
    items = list(it)
    parts = [items[i : i + n] for i in range(0, len(items), n)]
    members = [
        {"task": "celery.starmap", "args": [], "kwargs": {"task": dict(task), "it": part}}
        for part in parts
    ]
    applied = _apply(self, {"subtask_type": "group", "kwargs": {"tasks": members}}, ())
    return applied.children[0] if applied.children else None


@task(name="celery.group", bind=True)
def group(
    self: Task,
    tasks: Sequence[Mapping[str, Any]],
    result: Any,
    group_id: str,
    partial_args: Sequence[Any] = (),
    add_to_parent: bool = True,
) -> Any:
    sig = {"subtask_type": "group", "kwargs": {"tasks": list(tasks)}, "options": {}}
    sig["options"] = {"task_id": group_id}
    _apply(self, sig, tuple(partial_args or ()))
    return result


@task(name="celery.chain")
def chain(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError("chain is not a real task")


@task(name="celery.chord", bind=True, ignore_result=False)
def chord(
    self: Task,
    header: Any,
    body: Mapping[str, Any],
    partial_args: Sequence[Any] = (),
    interval: float | None = None,
    countdown: float = 1,
    max_retries: int | None = None,
    eager: bool = False,
    **kwargs: Any,
) -> Any:
    sig = {"subtask_type": "chord", "kwargs": {"header": header, "body": dict(body)}}
    _apply(self, sig, tuple(partial_args or ()))
    body_id = (body.get("options") or {}).get("task_id")
    return [[body_id, None], None] if body_id else None


class ChordUnlock(Task):
    """Polls a chord's header results (SQL backends) and applies the body when all are ready."""

    name = "celery.chord_unlock"
    max_retries = None
    default_retry_delay = 1.0
    ignore_result = True
    typing = False

    def run(
        self,
        group_id: str,
        callback: Mapping[str, Any],
        interval: float | None = None,
        max_retries: int | None = None,
        result: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        store: ResultStore | None = self.request.result_store
        if store is None:
            raise RuntimeError("celery.chord_unlock needs a result backend")
        ids = [str(r[0][0]) for r in result or ()]
        docs = [store.get(i) for i in ids]
        if not all(d.get("status") in READY_STATES for d in docs):
            raise self.retry(
                countdown=interval or self.default_retry_delay, max_retries=max_retries
            )
        failed = next((d for d in docs if d.get("status") in EXCEPTION_STATES), None)
        if failed is not None:
            culprit = str(failed.get("task_id"))
            fail_chord_body(store, group_id, callback, culprit, failed.get("result"))
            return
        _apply(self, callback, ([d.get("result") for d in docs],))


@task(name="celery.backend_cleanup", bind=True)
def backend_cleanup(self: Task) -> None:
    store: ResultStore | None = self.request.result_store
    cleanup = getattr(store.backend, "cleanup", None) if store is not None else None
    if cleanup is not None:
        cleanup()


BUILTIN_TASKS = tuple(sorted(n for n in registry if n.startswith("celery.")))
