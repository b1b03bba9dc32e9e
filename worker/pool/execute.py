"""Running one task in a pool thread or process: a :class:`Job` in, an :class:`Outcome` out.

Pure (no broker): everything the broker thread must do afterwards is *described* in the
outcome as ready-made envelopes (the result state message, callbacks, errbacks, chain step)
and event fields, so the broker thread only publishes, acks and counts. Both are picklable, so
the prefork pool ships them over a pipe unchanged.

Handlers run here, as Celery runs them in the pool: ``on_success`` / ``on_failure`` /
``on_retry`` and then ``after_return``. A raising handler is logged and does not change the
outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import FAILURE, RETRY, SUCCESS, encode_exception
from amqptool.codec.tasks import TaskMessage, safe_repr
from worker.pool import error_mail
from worker.pool.callbacks import on_failure_messages, on_success_messages
from worker.pool.celery_trace import CeleryTask, run_traced
from worker.pool.errbacks import call_in_process
from worker.pool.finish import chord_part, fail_chain, state_message, unencodable
from worker.pool.replace import replacement_messages
from worker.pool.results import ResultStore, store_for
from worker.task import context
from worker.task.context import Context, ExceptionInfo, Sink
from worker.task.define import Task
from worker.task.exceptions import EncodeError, Ignore, NotRegistered, Reject, Replaced, Retry

__all__ = ["IGNORED", "REJECTED", "Job", "Outcome", "execute"]

log = logging.getLogger("worker.execute")

REJECTED = "REJECTED"
IGNORED = "IGNORED"


@dataclass(slots=True)
class Job:
    """One task to run: the decoded message and where it came from."""

    seq: int
    message: TaskMessage
    queue: str
    delivery_info: dict[str, Any]
    hostname: str
    soft_limit: float | None = None  # seconds; enforced in the pool child (prefork)
    backend: str | None = None  # result backend URL (None / rpc://: reply messages)
    result_expires: float | None = 86_400.0

    def __reduce__(self) -> tuple[Any, ...]:  # the prefork pipe: faster than fields()
        return (
            Job,
            (
                self.seq,
                self.message,
                self.queue,
                self.delivery_info,
                self.hostname,
                self.soft_limit,
                self.backend,
                self.result_expires,
            ),
        )


@dataclass(slots=True)
class Outcome:
    """What happened, and what the broker thread must send because of it."""

    seq: int
    state: str
    runtime: float = 0.0
    result: Envelope | None = None
    followups: list[Envelope] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requeue: bool = False

    def __reduce__(self) -> tuple[Any, ...]:  # the prefork pipe: faster than fields()
        return (
            Outcome,
            (
                self.seq,
                self.state,
                self.runtime,
                self.result,
                self.followups,
                self.events,
                self.requeue,
            ),
        )


def _store(job: Job, task: Task | None = None) -> ResultStore | None:
    """The task's own result backend when it names one, else the worker's."""
    if task is not None and task.result_backend:
        expires = task.result_expires if task.result_expires is not None else job.result_expires
        return store_for(task.result_backend, expires)
    expires = job.result_expires
    if task is not None and task.result_expires is not None:
        expires = task.result_expires
    return store_for(job.backend, expires)


def _result(job: Job, status: str, value: Any, **extra: Any) -> Envelope | None:
    return state_message(
        job.message, context.current().result_store or _store(job), status, value, **extra
    )


def _call_handler(task: Task, name: str, *args: Any) -> None:
    try:
        getattr(task, name)(*args)
    except Exception:  # a broken handler must not change the task's outcome
        log.exception("task %s: %s handler raised", task.name, name)


def execute(job: Job, tasks: Mapping[str, Task], sink: Sink) -> Outcome:
    """Run ``job`` with its task from ``tasks``; never raises. ``self.request`` is set meanwhile.
    A FAILURE mails the admins when error e-mails are on (:mod:`worker.pool.error_mail`)."""
    task = tasks.get(job.message.task)
    if task is None:  # unregistered since it was received (the intake checks first)
        return _unknown(job)
    out = _execute(job, task, tasks, sink)
    if out.state == FAILURE and error_mail.enabled():
        fields = next((f for kind, f in out.events if kind == "task-failed"), {})
        error_mail.report_failure(task, job.message, job.hostname, fields)
    return out


def _execute(job: Job, task: Task, tasks: Mapping[str, Task], sink: Sink) -> Outcome:
    if isinstance(task, CeleryTask):  # Celery's tracer does it all, results included
        state, runtime, events, requeue = run_traced(job, task, sink)
        return Outcome(job.seq, state, runtime, events=events, requeue=requeue)
    ctx = Context(
        job.message,
        hostname=job.hostname,
        delivery_info=job.delivery_info,
        queue=job.queue,
        sink=sink,
    )
    ctx.result_store = _store(job, task)
    context.push(task, ctx)
    try:
        return _run(job, task, tasks, ctx)
    finally:
        context.pop()


def _run(job: Job, task: Task, tasks: Mapping[str, Task], ctx: Context) -> Outcome:
    msg = job.message
    store = ctx.result_store
    send_result = bool(msg.reply_to or store) and not (msg.ignore_result or task.ignore_result)
    start = time.perf_counter()
    try:
        try:
            retval = task(*msg.args, **msg.kwargs)
        except Exception as exc:
            task.autoretry(exc)  # raises Retry when autoretry_for covers exc
            raise
    except Retry as retry:
        return _retried(job, task, retry, time.perf_counter() - start, send_result)
    except Reject as reject:
        return _rejected(job, task, reject, time.perf_counter() - start, send_result)
    except Replaced as replaced:  # its replacement carries on under the same id
        out = Outcome(job.seq, IGNORED, time.perf_counter() - start)
        out.followups = replacement_messages(ctx, replaced.sig)
        return out
    except Ignore:
        return Outcome(job.seq, IGNORED, time.perf_counter() - start)
    except BaseException as exc:  # the task's failure, whatever it is, becomes FAILURE
        return _failed(job, task, exc, time.perf_counter() - start, send_result, tasks, ctx)
    runtime = time.perf_counter() - start
    problem = unencodable(retval, task.serializer) if send_result else None
    if problem is not None:  # as Celery: the task fails with kombu's EncodeError
        return _failed(job, task, EncodeError(problem), runtime, send_result, tasks, ctx)
    if log.isEnabledFor(logging.INFO):  # Celery's line
        log.info("Task %s[%s] succeeded in %ss: %s", msg.task, msg.id, runtime, safe_repr(retval))
    out = Outcome(job.seq, SUCCESS, runtime)
    children = list(ctx.children)
    if msg.callbacks or msg.chain:
        applied = on_success_messages(msg, retval, job.queue, store)
        out.followups = applied.envelopes
        children.extend(applied.children)
    if send_result:
        out.result = _result(job, SUCCESS, retval, children=children)
    out.followups.extend(chord_part(msg, store, SUCCESS, retval, job.queue))
    out.events.append(("task-succeeded", {"result": safe_repr(retval), "runtime": runtime}))
    _call_handler(task, "on_success", retval, msg.id, msg.args, msg.kwargs)
    _call_handler(task, "after_return", SUCCESS, retval, msg.id, msg.args, msg.kwargs, None)
    return out


def _unknown(job: Job) -> Outcome:
    msg = job.message
    exc = NotRegistered(msg.task)
    out = Outcome(job.seq, FAILURE)
    if (msg.reply_to or job.backend) and not msg.ignore_result:
        out.result = _result(job, FAILURE, encode_exception(exc))
    out.events.append(("task-failed", {"exception": safe_repr(exc)}))
    return out


def _failed(
    job: Job,
    task: Task,
    exc: BaseException,
    runtime: float,
    send: bool,
    tasks: Mapping[str, Task],
    ctx: Context,
) -> Outcome:
    msg = job.message
    einfo = ExceptionInfo(exc)
    if isinstance(exc, task.throws):
        log.info("Task %s[%s] raised expected: %s", msg.task, msg.id, safe_repr(exc))
    else:
        log.error(
            "Task %s[%s] raised unexpected: %s\n%s",
            msg.task,
            msg.id,
            safe_repr(exc),
            einfo.traceback,
        )
    out = Outcome(job.seq, FAILURE, runtime)
    store = ctx.result_store
    encoded = encode_exception(exc)
    if send:
        out.result = _result(
            job, FAILURE, encoded, traceback=einfo.traceback, children=list(ctx.children)
        )
    out.followups = list(chord_part(msg, store, FAILURE, encoded, job.queue))
    out.followups.extend(fail_chain(msg, store, encoded, einfo.traceback))
    to_send = call_in_process(msg.errbacks or [], tasks, ctx, exc, einfo.traceback)
    out.followups.extend(on_failure_messages(msg, job.queue, store, to_send))
    out.events.append(("task-failed", {"exception": safe_repr(exc), "traceback": einfo.traceback}))
    _call_handler(task, "on_failure", exc, msg.id, msg.args, msg.kwargs, einfo)
    _call_handler(task, "after_return", FAILURE, exc, msg.id, msg.args, msg.kwargs, einfo)
    return out


def _retried(job: Job, task: Task, retry: Retry, runtime: float, send: bool) -> Outcome:
    msg = job.message
    cause: BaseException = retry.exc if retry.exc is not None else retry
    einfo = ExceptionInfo(retry)
    log.info("Task %s[%s] retry: %s", msg.task, msg.id, retry)
    out = Outcome(job.seq, RETRY, runtime)
    if send:
        out.result = _result(
            job,
            RETRY,
            encode_exception(cause),
            traceback=einfo.traceback,
            children=[[[msg.id, None], None]],
        )
    out.events.append(
        ("task-retried", {"exception": safe_repr(cause), "traceback": einfo.traceback})
    )
    _call_handler(task, "on_retry", cause, msg.id, msg.args, msg.kwargs, einfo)
    _call_handler(task, "after_return", RETRY, retry, msg.id, msg.args, msg.kwargs, einfo)
    return out


def _rejected(job: Job, task: Task, reject: Reject, runtime: float, send: bool) -> Outcome:
    msg = job.message
    einfo = ExceptionInfo(reject)
    log.info("Task %s[%s] rejected (requeue=%s): %r", msg.task, msg.id, reject.requeue, reject)
    out = Outcome(job.seq, REJECTED, runtime, requeue=reject.requeue)
    if send and not reject.requeue:
        out.result = _result(job, FAILURE, encode_exception(reject), traceback=einfo.traceback)
    out.events.append(
        ("task-failed", {"exception": safe_repr(reject), "traceback": einfo.traceback})
    )
    out.events.append(("task-rejected", {"requeue": reject.requeue}))
    _call_handler(task, "after_return", REJECTED, reject, msg.id, msg.args, msg.kwargs, einfo)
    return out
