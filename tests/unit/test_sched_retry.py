"""Retry arithmetic as Celery's, and exceptions a Celery client re-raises as its own."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import celery.exceptions
import pytest
from celery import Celery
from celery.backends.base import BaseBackend
from celery.utils.time import get_exponential_backoff_interval

from amqptool.codec.results import encode_exception
from worker.task.exceptions import Ignore
from worker.task.retry_plan import (
    DEFAULT_RETRY_DELAY,
    MaxRetriesExceededError,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
    autoretry_countdown,
    backoff_factor,
    exponential_backoff,
    max_retries_error,
    max_retries_exceeded,
    plan_retry,
    retry_exception,
    should_autoretry,
)

NOW = datetime(2026, 11, 21, 9, 59, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("factor", "retries", "maximum", "countdown"),
    [
        (1, 0, 600, 1),
        (1, 1, 600, 2),
        (1, 5, 600, 32),
        (1, 9, 600, 512),
        (1, 10, 600, 600),
        (3, 2, 600, 12),
        (2, 30, 600, 600),
        (0, 4, 600, 0),
        (5, 3, 20, 20),
    ],
)
def test_backoff_doubles_per_retry_up_to_the_cap_like_celery(
    factor: int, retries: int, maximum: int, countdown: int
) -> None:
    assert exponential_backoff(factor, retries, maximum) == countdown
    assert countdown == get_exponential_backoff_interval(factor, retries, maximum)


@pytest.mark.parametrize(("retries", "cap"), [(0, 1), (3, 8), (12, 600)])
def test_full_jitter_picks_from_zero_to_the_countdown(retries: int, cap: int) -> None:
    rng = random.Random(7)
    seen = {exponential_backoff(1, retries, 600, full_jitter=True, rng=rng) for _ in range(400)}
    assert min(seen) >= 0 and max(seen) <= cap
    assert len(seen) > min(cap, 50) // 2  # spread over the range, not one value


@pytest.mark.parametrize(
    ("retry_backoff", "factor"),
    [(False, None), (0, None), (True, 1), (1, 1), (3, 3), (2.7, 2), (0.5, 1)],
)
def test_retry_backoff_true_means_factor_one_and_a_number_is_the_factor(
    retry_backoff: bool | float, factor: int | None
) -> None:
    assert backoff_factor(retry_backoff) == factor


def test_autoretry_without_backoff_leaves_the_countdown_to_default_retry_delay() -> None:
    assert autoretry_countdown(4, retry_backoff=False) is None
    plan = plan_retry(4, now=NOW, countdown=autoretry_countdown(4))
    assert plan.countdown == DEFAULT_RETRY_DELAY == 180.0


@pytest.mark.parametrize(
    ("retries", "backoff", "backoff_max", "countdown"),
    [(0, True, 600, 1), (4, True, 600, 16), (2, 5, 600, 20), (20, True, 600, 600), (6, 1, 30, 30)],
)
def test_autoretry_backoff_without_jitter(
    retries: int, backoff: bool | int, backoff_max: int, countdown: int
) -> None:
    got = autoretry_countdown(
        retries, retry_backoff=backoff, retry_backoff_max=backoff_max, retry_jitter=False
    )
    assert got == countdown


def test_autoretry_jitter_is_on_by_default() -> None:
    rng = random.Random(1)
    values = {autoretry_countdown(6, retry_backoff=True, rng=rng) for _ in range(200)}
    assert len(values) > 10 and max(v for v in values if v is not None) <= 64


def test_a_retry_without_countdown_or_eta_waits_default_retry_delay() -> None:
    plan = plan_retry(0, now=NOW)
    assert (plan.retries, plan.countdown, plan.when) == (1, 180.0, 180.0)
    assert plan.eta == NOW + timedelta(seconds=180)
    assert not plan.exceeded
    custom = plan_retry(0, now=NOW, default_retry_delay=5)
    assert custom.eta == NOW + timedelta(seconds=5)


def test_a_retry_with_a_countdown_is_due_that_long_from_now() -> None:
    plan = plan_retry(2, now=NOW, countdown=1)
    assert plan.retries == 3
    assert plan.eta == NOW + timedelta(seconds=1)
    assert str(retry_exception(plan, ValueError("boom"))) == "Retry in 1s: ValueError('boom')"


def test_a_retry_with_an_eta_keeps_it_and_reports_it() -> None:
    eta = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    plan = plan_retry(0, now=NOW, eta=eta, countdown=99)
    assert (plan.eta, plan.countdown, plan.when) == (eta, None, eta)
    assert str(retry_exception(plan)) == "Retry at 2026-11-21 12:00:00+00:00"


@pytest.mark.parametrize(
    ("current", "call_max", "task_max", "exceeded"),
    [
        (0, None, 3, False),
        (2, None, 3, False),  # the third retry is allowed
        (3, None, 3, True),  # a fourth is not
        (3, 5, 3, False),  # retry(max_retries=5) overrides the task's 3
        (5, 5, 3, True),
        (10_000, None, None, False),  # a task with max_retries=None retries for ever
        (0, 0, 3, True),  # max_retries=0: never retried
    ],
)
def test_max_retries_counts_like_celery(
    current: int, call_max: int | None, task_max: int | None, exceeded: bool
) -> None:
    plan = plan_retry(current, now=NOW, max_retries=call_max, task_max_retries=task_max)
    assert plan.exceeded is exceeded
    assert max_retries_exceeded(current + 1, call_max if call_max is not None else task_max) is (
        exceeded
    )


def test_past_max_retries_the_error_names_the_task_like_celery() -> None:
    err = max_retries_error("proto_app.flaky", "3c36", [1, 2], {"x": 1})
    assert isinstance(err, MaxRetriesExceededError)
    assert str(err) == "Can't retry proto_app.flaky[3c36] args:(1, 2) kwargs:{'x': 1}"


class Boom(Exception):
    pass


class Quiet(Boom):
    pass


@pytest.mark.parametrize(
    ("exc", "autoretry_for", "dont", "retried"),
    [
        (Boom(), (Boom,), (), True),
        (Quiet(), (Boom,), (), True),
        (Quiet(), (Boom,), (Quiet,), False),
        (KeyError(), (Boom,), (), False),
        (Retry(), (Exception,), (), False),
        (Ignore(), (Exception,), (), False),
        (Boom(), (), (), False),
    ],
)
def test_autoretry_for_picks_the_exceptions_to_retry(
    exc: BaseException,
    autoretry_for: tuple[type[BaseException], ...],
    dont: tuple[type[BaseException], ...],
    retried: bool,
) -> None:
    assert should_autoretry(exc, autoretry_for, dont) is retried


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (MaxRetriesExceededError("Can't retry t[1] args:() kwargs:{}"), None),
        (TaskRevokedError("expired"), None),
        (SoftTimeLimitExceeded(), "SoftTimeLimitExceeded()"),
        (TimeLimitExceeded(5.0), "TimeLimitExceeded(5.0,)"),
        (WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0."), None),
        (Reject("no thanks", False), None),
    ],
)
def test_a_celery_client_rebuilds_our_exceptions_as_its_own_classes(
    exc: BaseException, message: str | None
) -> None:
    wire = encode_exception(exc)
    assert wire["exc_module"] == "celery.exceptions"
    assert wire["exc_type"] == type(exc).__name__
    app = Celery(set_as_current=False)
    rebuilt = BaseBackend(app).exception_to_python(wire)
    assert type(rebuilt) is getattr(celery.exceptions, type(exc).__name__)
    assert list(rebuilt.args) == wire["exc_message"]
    if message is not None:
        assert str(exc) == message == str(rebuilt)


def test_the_revoked_reasons_go_on_the_wire_as_celery_sends_them() -> None:
    for reason in ("revoked", "expired", "terminated"):
        assert encode_exception(TaskRevokedError(reason)) == {
            "exc_type": "TaskRevokedError",
            "exc_message": [reason],
            "exc_module": "celery.exceptions",
        }
