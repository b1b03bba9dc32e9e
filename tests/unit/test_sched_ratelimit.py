"""Rate limits: Celery's rate strings, a token bucket per task name, held requests in order."""

from __future__ import annotations

import pytest
from celery.utils.time import rate as celery_rate

from worker.policy.rate_limit import (
    RateLimiter,
    TokenBucket,
    format_rate,
    parse_rate,
    rate_disables,
)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/s", 10.0),
        ("10/m", 10 / 60),
        ("2/h", 2 / 3600),
        ("0.5/s", 0.5),
        ("5", 5.0),
        ("10/", 10.0),
        (5, 5.0),
        (0.25, 0.25),
        ("100/m", 100 / 60),
    ],
)
def test_a_rate_string_means_what_it_means_to_celery(text: str | float, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)
    assert parse_rate(text) == pytest.approx(celery_rate(text))


@pytest.mark.parametrize("value", [0, 0.0, "0", "0/m", "", None])
def test_zero_empty_and_none_mean_unlimited(value: str | float | None) -> None:
    assert parse_rate(value) is None


BAD = "Invalid rate limit string: "
NOT_FLOAT = BAD + 'ValueError("could not convert string to float: {}")'
NOT_FINITE = BAD + 'ValueError("a rate limit must be a finite number >= 0: {}")'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # the exact text Celery 5.7 replies to the rate_limit control command (docs/protocol.md
        # §4.7)
        ("bogus", NOT_FLOAT.format("'bogus'")),
        ("/m", NOT_FLOAT.format("''")),
        ("5/x", BAD + "ValueError(\"unknown rate unit 'x' (use s, m or h)\")"),
        ("-1/s", NOT_FINITE.format("'-1/s'")),
        ("nan", NOT_FINITE.format("'nan'")),
        (True, BAD + "ValueError('a rate limit is not a boolean: True')"),
    ],
)
def test_a_bad_rate_is_refused_with_celerys_reply_text(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rate(value)  # type: ignore[arg-type]  # bad input on purpose
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "disables"), [(0, True), (None, True), ("", True), ("0", False), ("1/s", False)]
)
def test_only_a_falsy_value_is_answered_as_disabling(
    value: str | int | None, disables: bool
) -> None:
    assert rate_disables(value) is disables


@pytest.mark.parametrize(
    ("per_second", "text"),
    [(None, "0"), (10.0, "10/s"), (10 / 60, "10/m"), (2 / 3600, "2/h"), (0.3, "18/m")],
)
def test_a_rate_reads_back_in_the_largest_whole_unit(per_second: float | None, text: str) -> None:
    assert format_rate(per_second) == text


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, now=100.0)
    assert bucket.try_take(100.0) == 0.0
    assert bucket.try_take(100.0) == pytest.approx(0.5)
    assert bucket.try_take(100.25) == pytest.approx(0.25)
    assert bucket.try_take(100.5) == 0.0


def test_a_bucket_never_holds_more_than_its_capacity() -> None:
    bucket = TokenBucket(1.0, capacity=3, now=0.0)
    assert bucket.tokens(1000.0) == 3.0
    assert [bucket.try_take(1000.0) for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(1.0)]


def test_a_task_without_a_limit_always_goes() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    assert all(limiter.submit("free", i, now=0.0) for i in range(1000))
    assert limiter.try_acquire("free", now=0.0) == 0.0
    assert len(limiter) == 0


def test_try_acquire_says_how_long_to_wait() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", "4/s", now=0.0)
    assert limiter.try_acquire("t", now=0.0) == 0.0
    assert limiter.try_acquire("t", now=0.1) == pytest.approx(0.15)
    assert limiter.try_acquire("t", now=0.25) == 0.0


@pytest.mark.parametrize(("rate", "per_second"), [("10/s", 10), ("30/m", 0.5), (4, 4)])
def test_n_per_second_admits_at_most_about_n_per_second_over_a_window(
    rate: str | int, per_second: float
) -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", rate, now=0.0)
    started: list[tuple[float, int]] = []
    for i in range(200):
        if limiter.submit("t", i, now=0.0):
            started.append((0.0, i))
    now, window = 0.0, 10.0
    while True:  # the worker's timer: wake when the next token is due, release, repeat
        wait = limiter.next_release(now=now)
        assert wait is not None
        now += wait
        if now > window:
            break
        started.extend((now, item) for item in limiter.release(now=now))
    assert len(started) <= 1 + per_second * window + 1e-9
    assert len(started) >= per_second * window - 1
    for t in (1.0, 2.5, 7.0):
        assert sum(1 for when, _ in started if when <= t) <= 1 + per_second * t + 1e-9
    assert [item for _, item in started] == sorted(item for _, item in started)


def test_held_requests_keep_their_order_and_other_tasks_are_not_held_up() -> None:
    limiter: RateLimiter[str] = RateLimiter()
    limiter.set_rate("slow", "1/s", now=0.0)
    assert limiter.submit("slow", "a", now=0.0)
    assert not limiter.submit("slow", "b", now=0.0)
    assert not limiter.submit("slow", "c", now=0.5)
    assert limiter.submit("fast", "x", now=0.5)
    assert limiter.held() == ["b", "c"]
    assert limiter.next_release(now=0.5) == pytest.approx(0.5)
    assert limiter.release(now=0.9) == []
    assert limiter.release(now=1.0) == ["b"]
    assert limiter.release(now=2.0) == ["c"]
    assert limiter.next_release(now=2.0) is None


def test_a_new_request_waits_behind_the_held_ones_even_when_a_token_is_back() -> None:
    limiter: RateLimiter[str] = RateLimiter()
    limiter.set_rate("t", "1/s", now=0.0)
    assert limiter.submit("t", "a", now=0.0)
    assert not limiter.submit("t", "b", now=0.5)
    assert not limiter.submit("t", "c", now=1.5)  # a token is back, but "b" is first
    assert limiter.release(now=1.5) == ["b"]


def test_releases_from_several_tasks_come_out_in_arrival_order() -> None:
    limiter: RateLimiter[str] = RateLimiter()
    limiter.set_rate("a", "1/s", now=0.0)
    limiter.set_rate("b", "1/s", now=0.0)
    for name in ("a", "b"):
        assert limiter.submit(name, f"{name}0", now=0.0)
    assert not limiter.submit("b", "b1", now=0.1)
    assert not limiter.submit("a", "a1", now=0.2)
    assert limiter.release(now=5.0) == ["b1", "a1"]


def test_removing_a_limit_lets_everything_held_go() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", "1/h", now=0.0)
    for i in range(5):
        limiter.submit("t", i, now=0.0)
    assert limiter.set_rate("t", 0, now=1.0) is None
    assert limiter.next_release(now=1.0) == 0.0
    assert limiter.release(now=1.0) == [1, 2, 3, 4]
    assert limiter.rate_of("t") is None
    assert limiter.submit("t", 9, now=1.0)


def test_a_new_rate_starts_with_a_full_bucket_and_keeps_held_requests() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", "1/h", now=0.0)
    for i in range(3):
        limiter.submit("t", i, now=0.0)
    limiter.set_rate("t", "10/s", now=1.0)
    assert limiter.rate_of("t") == 10.0
    assert limiter.held("t") == [1, 2]
    assert limiter.release(now=1.0) == [1]
    assert limiter.release(now=1.1) == [2]


def test_a_bad_rate_leaves_the_old_limit_in_place() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", "5/m", now=0.0)
    with pytest.raises(ValueError, match="Invalid rate limit string"):
        limiter.set_rate("t", "fast", now=0.0)
    assert limiter.rates() == {"t": pytest.approx(5 / 60)}


def test_burst_lets_that_many_through_after_an_idle_spell() -> None:
    limiter: RateLimiter[int] = RateLimiter(burst=3)
    limiter.set_rate("t", "1/s", now=0.0)
    assert [limiter.submit("t", i, now=100.0) for i in range(4)] == [True, True, True, False]


def test_warm_shutdown_drains_what_is_held_and_revoked_ones_can_be_taken_out() -> None:
    limiter: RateLimiter[str] = RateLimiter()
    limiter.set_rate("t", "1/m", now=0.0)
    for item in ("a", "b", "c", "d"):
        limiter.submit("t", item, now=0.0)
    assert limiter.remove(lambda item: item == "c") == ["c"]
    assert limiter.drain() == ["b", "d"]
    assert len(limiter) == 0
    assert limiter.rate_of("t") == pytest.approx(1 / 60)


def test_the_limiter_reads_its_clock_only_when_no_time_is_given() -> None:
    ticks = iter([10.0, 10.0, 10.5])
    limiter: RateLimiter[int] = RateLimiter(clock=lambda: next(ticks))
    limiter.set_rate("t", "1/s")
    assert limiter.submit("t", 1)
    assert not limiter.submit("t", 2)
    assert limiter.release(now=11.0) == [2]


def test_a_late_timer_never_lets_more_through_than_the_rate() -> None:
    limiter: RateLimiter[int] = RateLimiter()
    limiter.set_rate("t", "10/s", now=0.0)
    started = [0.0] if limiter.submit("t", 0, now=0.0) else []
    for i in range(1, 300):
        limiter.submit("t", i, now=0.0)
    for k in range(1, 701):  # coarse, jittery ticks: 7 ms apart
        started.extend(k * 0.007 for _ in limiter.release(now=k * 0.007))
    for t in (0.5, 1.0, 3.0, 4.9):
        assert sum(1 for when in started if when <= t) <= 1 + 10 * t + 1e-9
