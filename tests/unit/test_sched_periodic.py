"""Periodic tasks: schedule and crontab (checked against Celery's), the registry, the beat."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab as celery_crontab

from amqptool.codec import tasks
from amqptool.errors import AmqpToolError
from tests.harness import wait_until
from worker.beat.scheduler import Beat, BeatThread, ScheduleFileError, entry_envelope
from worker.task.periodic import (
    PeriodicEntry,
    PeriodicRegistry,
    crontab,
    parse_cronspec,
    periodic_task,
    schedule,
)

T0 = datetime(2026, 3, 5, 10, 17, 30, tzinfo=UTC)  # a Thursday


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


# ---------------------------------------------------------------------- crontab fields


@pytest.mark.parametrize(
    ("spec", "low", "high", "values"),
    [
        ("*", 0, 5, {0, 1, 2, 3, 4, 5}),
        ("*/15", 0, 59, {0, 15, 30, 45}),
        ("1,2", 0, 59, {1, 2}),
        ("1-5", 0, 59, {1, 2, 3, 4, 5}),
        ("1-10/3", 0, 59, {1, 4, 7, 10}),
        ("5/20", 0, 59, {5, 25, 45}),
        ("58-1", 0, 59, {58, 59, 0, 1}),
        (7, 0, 23, {7}),
        ([8, 17], 0, 23, {8, 17}),
        ("*/2", 1, 12, {1, 3, 5, 7, 9, 11}),
    ],
)
def test_a_crontab_field_expands_to_the_values_it_matches(
    spec: Any, low: int, high: int, values: set[int]
) -> None:
    assert parse_cronspec(spec, low, high) == values


@pytest.mark.parametrize(
    ("day_of_week", "days"),
    [
        ("mon", {1}),
        ("sun", {0}),
        ("0", {0}),
        ("mon-fri", {1, 2, 3, 4, 5}),
        ("fri-mon", {5, 6, 0, 1}),
        ("sat,sun", {6, 0}),
        ("thursday", {4}),
    ],
)
def test_days_of_week_take_names_and_0_is_sunday(day_of_week: str, days: set[int]) -> None:
    assert crontab(day_of_week=day_of_week).day_of_week == days


def test_months_take_names() -> None:
    assert crontab(month_of_year="jan,jul-sep").month_of_year == {1, 7, 8, 9}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minute": "60"},
        {"minute": "*/0"},
        {"minute": "-1"},
        {"minute": "1,,2"},
        {"hour": "24"},
        {"day_of_week": "7"},
        {"day_of_week": "funday"},
        {"day_of_month": "0"},
        {"day_of_month": 31, "month_of_year": "feb,apr"},  # never a real date
        {"minute": True},
    ],
)
def test_a_bad_crontab_is_refused_when_it_is_made(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        crontab(**kwargs)


def test_a_crontab_string_uses_the_unix_field_order() -> None:
    assert crontab.from_string("*/15 9-17 * * mon-fri") == crontab(
        minute="*/15", hour="9-17", day_of_week="mon-fri"
    )
    with pytest.raises(ValueError, match="5 fields"):
        crontab.from_string("* * *")


# ---------------------------------------------------------------------- crontab timing

CASES = [
    ({}, T0),
    ({"minute": "*/15"}, T0),
    ({"minute": 30, "hour": 7}, T0),
    ({"minute": 0, "hour": "*/4"}, T0),
    ({"minute": 0, "hour": 0, "day_of_week": "sun"}, T0),
    ({"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"}, at(days=1, hours=8)),
    ({"minute": 0, "hour": 12, "day_of_month": 1}, T0),
    ({"minute": 0, "hour": 0, "day_of_month": 29, "month_of_year": 2}, T0),
    ({"minute": 59, "hour": 23, "day_of_month": 31}, at(days=-4)),
    ({"minute": 5, "hour": 3, "month_of_year": "jan"}, T0),
    ({"minute": "0,30", "hour": "10"}, at(minutes=12, seconds=30)),
    ({"minute": 17, "hour": 10}, T0),  # the last run was in the matching minute itself
    (
        {"minute": 0, "hour": 0, "day_of_month": 1, "month_of_year": 1},
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("fields", "last_run"), CASES)
def test_the_next_run_is_the_one_celery_computes(
    fields: dict[str, Any], last_run: datetime
) -> None:
    app = Celery(set_as_current=False)
    app.conf.timezone = "UTC"
    theirs = celery_crontab(**fields, nowfun=lambda: last_run, app=app)
    expected = last_run + theirs.remaining_estimate(last_run)
    assert crontab(**fields).next_after(last_run) == expected


@pytest.mark.parametrize(
    ("last_run", "now", "due", "next_in"),
    [
        (T0, at(seconds=60), False, 690.0),  # 10:18:30, next run 10:30
        (T0, datetime(2026, 3, 5, 10, 30, tzinfo=UTC), True, 900.0),
        (T0, datetime(2026, 3, 5, 13, 1, tzinfo=UTC), True, 840.0),  # missed runs: run once
        (
            datetime(2026, 3, 5, 10, 30, tzinfo=UTC),
            datetime(2026, 3, 5, 10, 30, 1, tzinfo=UTC),
            False,
            899.0,
        ),
    ],
)
def test_a_crontab_is_due_once_its_next_minute_has_come(
    last_run: datetime, now: datetime, due: bool, next_in: float
) -> None:
    assert crontab(minute="*/15").is_due(last_run, now) == (due, next_in)


def test_a_crontab_runs_on_the_wall_clock_of_its_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    daily = crontab(minute=30, hour=7, tz=berlin)
    nxt = daily.next_after(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert nxt == datetime(2026, 7, 2, 5, 30, tzinfo=UTC)  # 07:30 CEST


@pytest.mark.parametrize(
    ("every", "now", "due", "next_in"),
    [
        (60, at(seconds=59), False, 1.0),
        (60, at(seconds=60), True, 60.0),
        (timedelta(hours=1), at(hours=5), True, 3600.0),
        (0.5, at(seconds=0.25), False, 0.25),
    ],
)
def test_an_interval_is_due_run_every_after_the_last_run(
    every: float | timedelta, now: datetime, due: bool, next_in: float
) -> None:
    assert schedule(every).is_due(T0, now) == (due, pytest.approx(next_in))


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        schedule(0)


# ---------------------------------------------------------------------- registry


def test_periodic_task_records_an_entry_and_returns_the_function() -> None:
    reg = PeriodicRegistry()

    @periodic_task(run_every=timedelta(seconds=30), args=(1, 2), queue="q", registry=reg)
    def tick(x: int, y: int) -> int:
        return x + y

    @periodic_task(crontab(minute=0), name="app.nightly", kwargs={"full": True}, registry=reg)
    def nightly(full: bool) -> None:
        return None

    assert tick(1, 2) == 3
    first, second = reg.entries()
    assert first.task == first.name == f"{__name__}.{tick.__qualname__}"
    assert first.schedule == schedule(30)
    assert (first.args, first.queue) == ((1, 2), "q")
    assert (second.name, second.kwargs, second.schedule) == (
        "app.nightly",
        {"full": True},
        crontab(minute=0),
    )
    assert "app.nightly" in reg and len(reg) == 2


def test_run_every_must_be_a_schedule() -> None:
    with pytest.raises(TypeError):
        periodic_task(run_every="often", registry=PeriodicRegistry())  # type: ignore[arg-type]  # bad on purpose


# ---------------------------------------------------------------------- beat


class Sent:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.fail = False

    def __call__(self, entry: PeriodicEntry) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.names.append(entry.name)


def every(name: str, seconds: float) -> PeriodicEntry:
    return PeriodicEntry(name=name, task=f"app.{name}", schedule=schedule(seconds))


def test_the_beat_sends_an_interval_entry_each_time_it_is_due(tmp_path: Path) -> None:
    sent = Sent()
    beat = Beat([every("a", 60)], sent, schedule_file=tmp_path / "beat.json")
    assert beat.tick(T0) == 60.0
    assert beat.tick(at(seconds=59)) == pytest.approx(1.0)
    assert sent.names == []
    assert beat.tick(at(seconds=60)) == 60.0
    assert beat.tick(at(seconds=119)) == pytest.approx(1.0)
    assert beat.tick(at(seconds=120)) == 60.0
    assert sent.names == ["a", "a"]


def test_a_restart_does_not_run_an_entry_again_before_its_time(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    sent = Sent()
    first = Beat([every("a", 60)], sent, schedule_file=path)
    first.tick(T0)
    first.tick(at(seconds=60))
    assert sent.names == ["a"]

    second = Beat([every("a", 60)], sent, schedule_file=path)  # the worker restarted
    second.tick(at(seconds=61))
    second.tick(at(seconds=119))
    assert sent.names == ["a"]
    second.tick(at(seconds=120))
    assert sent.names == ["a", "a"]


def test_a_restart_does_not_push_a_pending_run_further_away(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    sent = Sent()
    Beat([every("a", 60)], sent, schedule_file=path).tick(T0)
    for restart in (20, 40, 59):  # restarts more often than the interval
        Beat([every("a", 60)], sent, schedule_file=path).tick(at(seconds=restart))
    Beat([every("a", 60)], sent, schedule_file=path).tick(at(seconds=60))
    assert sent.names == ["a"]


def test_runs_missed_while_down_run_once_on_restart_then_count_from_there(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    sent = Sent()
    Beat([every("a", 60)], sent, schedule_file=path).tick(T0)
    beat = Beat([every("a", 60)], sent, schedule_file=path)
    assert beat.tick(at(seconds=600)) == 60.0  # ten runs missed: one now
    beat.tick(at(seconds=601))
    assert sent.names == ["a"]
    beat.tick(at(seconds=660))
    assert sent.names == ["a", "a"]


def test_a_crontab_entry_neither_skips_nor_doubles_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    hourly = [PeriodicEntry(name="h", task="app.h", schedule=crontab(minute=0))]
    sent = Sent()
    ten = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    Beat(hourly, sent, schedule_file=path).tick(ten - timedelta(minutes=5))
    Beat(hourly, sent, schedule_file=path).tick(ten)
    Beat(hourly, sent, schedule_file=path).tick(ten + timedelta(seconds=1))
    Beat(hourly, sent, schedule_file=path).tick(ten + timedelta(minutes=30))
    assert sent.names == ["h"]
    Beat(hourly, sent, schedule_file=path).tick(ten + timedelta(hours=1, minutes=5))  # 11:00 missed
    Beat(hourly, sent, schedule_file=path).tick(ten + timedelta(hours=1, minutes=6))
    assert sent.names == ["h", "h"]


def test_a_failed_send_is_not_recorded_and_is_tried_again_soon(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    sent = Sent()
    beat = Beat([every("a", 60)], sent, schedule_file=path, retry_after=5)
    beat.tick(T0)
    sent.fail = True
    assert beat.tick(at(seconds=60)) == 5.0
    assert beat.last_run("a") == T0
    sent.fail = False
    Beat([every("a", 60)], sent, schedule_file=path).tick(at(seconds=65))
    assert sent.names == ["a"]


def test_due_entries_go_out_in_the_order_they_fell_due() -> None:
    sent = Sent()
    beat = Beat([every("slow", 90), every("fast", 30), every("mid", 60)], sent)
    beat.tick(T0)
    beat.tick(at(seconds=100))
    assert sent.names == ["fast", "mid", "slow"]


def test_the_beat_sleeps_no_longer_than_max_interval() -> None:
    beat = Beat([every("rare", 86400)], Sent(), max_interval=300)
    assert beat.tick(T0) == 300.0


def test_a_changed_schedule_starts_counting_afresh(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    sent = Sent()
    Beat([every("a", 60)], sent, schedule_file=path).tick(T0)
    beat = Beat([every("a", 3600)], sent, schedule_file=path)
    beat.tick(at(seconds=120))
    assert sent.names == []
    assert beat.last_run("a") == at(seconds=120)


def test_the_schedule_file_keeps_entries_this_beat_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    Beat([every("a", 60), every("b", 60)], Sent(), schedule_file=path).tick(T0)
    Beat([every("a", 60)], Sent(), schedule_file=path).tick(at(seconds=60))
    data = json.loads(path.read_text())
    assert set(data["entries"]) == {"a", "b"}
    assert data["entries"]["a"]["total_run_count"] == 1
    assert data["entries"]["a"]["last_run_at"] == "2026-03-05T10:18:30+00:00"
    assert [p.name for p in tmp_path.iterdir()] == ["beat.json"]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "{}",
        '{"format": "amqptool-beat-schedule", "version": 2, "entries": {}}',
        '{"format": "amqptool-beat-schedule", "version": 1, "entries": []}',
        '{"format": "amqptool-beat-schedule", "version": 1, "entries": {"a": {}}}',
        '{"format": "amqptool-beat-schedule", "version": 1,'
        ' "entries": {"a": {"last_run_at": "yesterday"}}}',
    ],
)
def test_a_corrupt_schedule_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "beat.json"
    path.write_text(content)
    with pytest.raises(ScheduleFileError) as info:
        Beat([every("a", 60)], Sent(), schedule_file=path).tick(T0)
    assert isinstance(info.value, AmqpToolError)
    line = info.value.user_line()
    assert f"beat schedule file {path} is not usable" in line and "delete it" in line


def test_the_beat_thread_runs_entries_on_the_real_clock_and_stops_at_once() -> None:
    sent = Sent()
    lock = threading.Lock()

    def send(entry: PeriodicEntry) -> None:
        with lock:
            sent(entry)

    thread = BeatThread(Beat([every("fast", 0.05)], send))
    thread.start()
    try:
        wait_until(lambda: len(sent.names) >= 3, timeout=10, message="three periodic sends")
    finally:
        thread.stop(timeout=5)
    assert not thread.is_alive()
    assert thread.error is None


def test_a_due_entry_becomes_a_celery_task_message_for_its_queue() -> None:
    entry = PeriodicEntry(
        name="nightly",
        task="app.report",
        schedule=crontab(minute=0, hour=3),
        args=(1, "x"),
        kwargs={"full": True},
        queue="reports",
        options={"expires": 60, "priority": 5},
    )
    first, second = entry_envelope(entry, T0), entry_envelope(entry, T0)
    assert (first.exchange, first.routing_key) == ("", "reports")
    msg = tasks.decode_task(first)
    assert (msg.task, msg.args, msg.kwargs) == ("app.report", [1, "x"], {"full": True})
    assert msg.expires == at(seconds=60)
    assert first.properties.priority == 5
    assert msg.id != tasks.decode_task(second).id  # every run is a new task


def test_an_entry_with_an_unknown_option_is_refused_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="unknown options \\['countdwn'\\]"):
        PeriodicEntry(name="a", task="t", schedule=schedule(5), options={"countdwn": 1})
