"""Retry arithmetic as Celery does it (``Task.retry``, ``autoretry_for``), as pure functions.

- :func:`plan_retry`: what ``self.retry(countdown=, eta=, max_retries=)`` publishes: the next
  ``retries`` value and the new eta (``default_retry_delay``, 180 s, when neither countdown nor
  eta is given), or that ``max_retries`` is exceeded (then the task fails with the ``exc`` it
  gave, or :class:`MaxRetriesExceededError`, see :func:`max_retries_error`).
  ``max_retries=None`` in the call means "the task's value" (default 3); a task whose
  ``max_retries`` is None retries forever.
- :func:`autoretry_countdown`: the countdown ``autoretry_for`` uses: with ``retry_backoff``
  (True = factor 1, a number = that factor) it is ``factor * 2**retries`` capped at
  ``retry_backoff_max`` (600), and with ``retry_jitter`` (default True) a uniform random integer
  from 0 to that (Celery's ``get_exponential_backoff_interval``, "full jitter"). Without
  backoff it is None and the retry falls back to ``default_retry_delay``.

The exception types live in :mod:`worker.task.exceptions` (re-exported here); the result codec
reports them under ``exc_module: "celery.exceptions"`` so a Celery client re-raises its own
classes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.task.exceptions import (
    Ignore,
    MaxRetriesExceededError,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_BACKOFF_MAX",
    "DEFAULT_RETRY_DELAY",
    "MaxRetriesExceededError",
    "Reject",
    "Retry",
    "RetryPlan",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "WorkerLostError",
    "autoretry_countdown",
    "backoff_factor",
    "exponential_backoff",
    "max_retries_error",
    "max_retries_exceeded",
    "plan_retry",
    "resolve_max_retries",
    "retry_exception",
    "should_autoretry",
]

DEFAULT_RETRY_DELAY = 180.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BACKOFF_MAX = 600

_RNG = random.Random()


# ---------------------------------------------------------------------- backoff


def exponential_backoff(
    factor: int,
    retries: int,
    maximum: int,
    *,
    full_jitter: bool = False,
    rng: random.Random | None = None,
) -> int:
    """``min(maximum, factor * 2**retries)``, or with ``full_jitter`` a random 0..that."""
    countdown = min(int(maximum), int(factor) << max(0, int(retries)))
    if full_jitter:
        source = rng or _RNG
        countdown = source.randrange(countdown + 1) if countdown > 0 else 0
    return max(0, countdown)


def backoff_factor(retry_backoff: bool | float) -> int | None:
    """The factor for a task's ``retry_backoff``: None when off, True = 1, else ``int(≥1)``."""
    value = float(retry_backoff)
    if not value:
        return None
    return int(max(1.0, value))


def autoretry_countdown(
    retries: int,
    *,
    retry_backoff: bool | float = False,
    retry_backoff_max: int = DEFAULT_RETRY_BACKOFF_MAX,
    retry_jitter: bool = True,
    rng: random.Random | None = None,
) -> int | None:
    """The countdown an ``autoretry_for`` retry uses after ``retries`` earlier retries.

    None when ``retry_backoff`` is off: :func:`plan_retry` then uses ``default_retry_delay``.
    """
    factor = backoff_factor(retry_backoff)
    if factor is None:
        return None
    return exponential_backoff(
        factor, retries, int(retry_backoff_max), full_jitter=retry_jitter, rng=rng
    )


def should_autoretry(
    exc: BaseException,
    autoretry_for: Sequence[type[BaseException]],
    dont_autoretry_for: Sequence[type[BaseException]] = (),
) -> bool:
    """Whether ``autoretry_for`` turns this exception into a retry (Celery's rules).

    ``Retry`` and ``Ignore`` are never retried again; ``dont_autoretry_for`` wins.
    """
    if isinstance(exc, Retry | Ignore):
        return False
    if dont_autoretry_for and isinstance(exc, tuple(dont_autoretry_for)):
        return False
    return bool(autoretry_for) and isinstance(exc, tuple(autoretry_for))


# ---------------------------------------------------------------------- retry()


def resolve_max_retries(call_value: int | None, task_value: int | None) -> int | None:
    """``retry(max_retries=None)`` means the task's own limit; None from the task = forever."""
    return task_value if call_value is None else call_value


def max_retries_exceeded(next_retries: int, max_retries: int | None) -> bool:
    """True when a retry that would carry ``retries = next_retries`` is past the limit."""
    return max_retries is not None and next_retries > max_retries


@dataclass(frozen=True)
class RetryPlan:
    """What ``Task.retry`` does next.

    ``exceeded``: fail instead of retrying. Otherwise publish the same task with
    ``retries``, and ``eta``; ``when`` is what :class:`Retry` reports (the countdown in seconds,
    or the eta given by the caller).
    """

    exceeded: bool
    retries: int
    eta: datetime | None
    countdown: float | None
    when: float | datetime | None


def plan_retry(
    current_retries: int,
    *,
    now: datetime,
    countdown: float | None = None,
    eta: datetime | None = None,
    max_retries: int | None = None,
    task_max_retries: int | None = DEFAULT_MAX_RETRIES,
    default_retry_delay: float = DEFAULT_RETRY_DELAY,
) -> RetryPlan:
    """The retry of a request that has been retried ``current_retries`` times so far."""
    next_retries = current_retries + 1
    exceeded = max_retries_exceeded(
        next_retries, resolve_max_retries(max_retries, task_max_retries)
    )
    if eta is not None:
        aware = eta if eta.tzinfo is not None else eta.replace(tzinfo=UTC)
        return RetryPlan(exceeded, next_retries, aware, None, eta)
    seconds = default_retry_delay if countdown is None else countdown
    return RetryPlan(
        exceeded, next_retries, now + timedelta(seconds=float(seconds)), seconds, seconds
    )


def retry_exception(plan: RetryPlan, exc: BaseException | None = None) -> Retry:
    """The :class:`Retry` a task raises after the retry message was published."""
    return Retry(exc=exc, when=plan.when)


def max_retries_error(
    task_name: str, task_id: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> MaxRetriesExceededError:
    """Celery's message: ``Can't retry <name>[<id>] args:<args> kwargs:<kwargs>``."""
    return MaxRetriesExceededError(
        f"Can't retry {task_name}[{task_id}] args:{tuple(args)} kwargs:{kwargs}"
    )
