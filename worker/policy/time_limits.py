"""Time limits: which ones apply to a task, and the low-level means the pools enforce them with.

**Which limits** (Celery's precedence, :func:`resolve`): the message's ``timelimit`` header
``[hard, soft]`` (a client's ``apply_async(time_limit=, soft_time_limit=)``) first; else the
task type's limit, as last set by the ``time_limit`` control command or else the task's
``time_limit``/``soft_time_limit`` option; else the worker's ``--time-limit`` /
``--soft-time-limit``. None or 0 means no limit.

**What each pool can enforce**

- ``prefork``: the soft limit raises :class:`~worker.task.exceptions.SoftTimeLimitExceeded` inside
  the task (a ``SIGALRM`` timer armed in the child; the task may catch it and clean up). At the
  hard limit the broker thread kills the child (``SIGKILL``): the task fails with
  ``TimeLimitExceeded(<limit>)`` (FAILURE result, ``task-failed``), a new child is forked and
  the worker goes on. This works whatever the task is doing, even blocked in C code.
- ``threads`` and ``solo``: a thread cannot be killed. Both limits are raised *asynchronously*
  in the task's thread (``PyThreadState_SetAsyncExc``): ``SoftTimeLimitExceeded`` at the soft
  limit, ``TimeLimitExceeded`` at the hard one. Python delivers such an exception only between
  bytecodes, so a task blocked in one long C call (``time.sleep(60)``, a socket read without
  timeout, a lock) gets it only when that call returns; a task that catches the hard one keeps
  running. The pool slot is busy until the task returns. Use ``prefork`` when a limit must hold.

The exception may, in a very small window, land just after the task body returned (while its
result is being built); the task then fails with it. Billiard's pool has the same race.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Mapping
from types import FrameType

from worker.task.define import Task
from worker.task.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

__all__ = [
    "Limits",
    "arm_soft_alarm",
    "async_raise",
    "disarm_soft_alarm",
    "hard_limit_error",
    "install_soft_alarm",
    "resolve",
    "soft_limit_error",
    "use_soft_limit_error",
]

MAX_LIMIT = 7 * 24 * 3600.0
Limits = tuple[float | None, float | None]
"""``(hard, soft)`` in seconds; None = no limit."""


def _positive(value: float | None) -> float | None:
    """A usable limit, or None: a limit from a message may be anything (negative, NaN, "x",
    1e400); what is not a finite positive number of seconds up to a week means no limit."""
    if not value or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 < seconds <= MAX_LIMIT else None


def resolve(
    message_limits: Limits,
    task: Task,
    overrides: Mapping[str, Limits],
    defaults: Limits = (None, None),
) -> Limits:
    """The ``(hard, soft)`` limits of one request (see the module docstring for the order)."""
    msg_hard, msg_soft = message_limits
    task_hard, task_soft = overrides.get(str(task.name), (task.time_limit, task.soft_time_limit))
    hard = _positive(msg_hard) or _positive(task_hard) or _positive(defaults[0])
    soft = _positive(msg_soft) or _positive(task_soft) or _positive(defaults[1])
    return hard, soft


# ---------------------------------------------------------------------- threads

_HARD_ERRORS: dict[float, type[TimeLimitExceeded]] = {}


def hard_limit_error(limit: float) -> type[TimeLimitExceeded]:
    """A TimeLimitExceeded subclass whose instances carry ``limit`` (an asynchronous exception
    must be a class, raised without arguments). It encodes as ``TimeLimitExceeded``."""
    cls = _HARD_ERRORS.get(limit)
    if cls is None:

        def __init__(self: TimeLimitExceeded) -> None:
            TimeLimitExceeded.__init__(self, limit)

        cls = type(
            "TimeLimitExceeded",
            (TimeLimitExceeded,),
            {"__init__": __init__, "__module__": TimeLimitExceeded.__module__},
        )
        _HARD_ERRORS[limit] = cls
    return cls


def async_raise(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Raise ``exc_type`` in the thread ``thread_id`` at its next bytecode (None: cancel a
    pending one). True when the thread exists."""
    exc = ctypes.py_object(exc_type) if exc_type is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)
    return bool(changed)


# ---------------------------------------------------------------------- prefork children


_soft_error: type[BaseException] = SoftTimeLimitExceeded


def soft_limit_error() -> type[BaseException]:
    """The exception a soft time limit raises in a task."""
    return _soft_error


def use_soft_limit_error(exc_type: type[SoftTimeLimitExceeded]) -> None:
    """Raise ``exc_type`` (a subclass of ours) at soft limits: with a Celery app loaded, one
    that Celery's ``SoftTimeLimitExceeded`` also catches."""
    global _soft_error
    _soft_error = exc_type


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _soft_error()


def install_soft_alarm() -> None:
    """In a pool child: SIGALRM raises SoftTimeLimitExceeded (in the main thread, the task's)."""
    signal.signal(signal.SIGALRM, _on_alarm)


def arm_soft_alarm(seconds: float | None) -> None:
    """Start the soft-limit timer for the task about to run (nothing when no limit)."""
    if seconds:
        signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm_soft_alarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
