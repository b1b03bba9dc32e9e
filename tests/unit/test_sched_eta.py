"""ETA: run, hold in memory or park on the broker; the timer heap behind ``scheduled``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from worker.policy.eta import DEFAULT_PARK_THRESHOLD, EtaSchedule, decide, is_expired

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("eta", "threshold", "decision"),
    [
        (None, 600.0, "run"),
        (at(-5), 600.0, "run"),
        (at(0), 600.0, "run"),
        (at(0.001), 600.0, "hold"),
        (at(600), 600.0, "hold"),
        (at(600.5), 600.0, "park"),
        (at(7 * 86400), 600.0, "park"),
        (at(0.5), 0.0, "hold"),  # under a second is never parked: no bucket that small
        (at(1.5), 0.0, "park"),
        (at(30 * 86400), None, "hold"),  # threshold None: hold everything, as Celery
    ],
)
def test_a_requests_eta_decides_run_hold_or_park(
    eta: datetime | None, threshold: float | None, decision: str
) -> None:
    assert decide(eta, NOW, threshold) == decision


def test_the_default_threshold_is_well_under_rabbitmqs_30_minute_consumer_timeout() -> None:
    assert DEFAULT_PARK_THRESHOLD <= 30 * 60 / 2
    assert decide(at(DEFAULT_PARK_THRESHOLD + 1), NOW) == "park"


def test_times_with_other_offsets_or_none_compare_as_the_same_instant() -> None:
    cet = timezone(timedelta(hours=1))
    assert decide(datetime(2026, 11, 21, 11, 0, 0, tzinfo=cet), NOW) == "run"
    assert decide(datetime(2026, 11, 21, 10, 5, 0), NOW) == "hold"  # naive = UTC


@pytest.mark.parametrize(
    ("expires", "expired"), [(None, False), (at(1), False), (at(0), True), (at(-60), True)]
)
def test_a_request_is_expired_from_its_expires_time_on(
    expires: datetime | None, expired: bool
) -> None:
    assert is_expired(expires, NOW) is expired


@dataclass
class Req:
    id: str
    name: str = "proto_app.add"

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "acknowledged": False}


def schedule_of(*entries: tuple[float, str]) -> EtaSchedule[Req]:
    sched: EtaSchedule[Req] = EtaSchedule(key=lambda r: r.id)
    for seconds, task_id in entries:
        sched.schedule(at(seconds), Req(task_id))
    return sched


def test_due_requests_come_out_earliest_first_and_never_before_their_eta() -> None:
    sched = schedule_of((30, "c"), (10, "a"), (20, "b"))
    assert sched.pop_due(at(9.999)) == []
    assert [r.id for r in sched.pop_due(at(20))] == ["a", "b"]
    assert sched.next_due() == at(30)
    assert [r.id for r in sched.pop_due(at(100))] == ["c"]
    assert sched.next_due() is None
    assert len(sched) == 0


def test_requests_with_the_same_eta_keep_their_arrival_order() -> None:
    sched = schedule_of((5, "first"), (5, "second"), (5, "third"))
    assert [r.id for r in sched.pop_due(at(5))] == ["first", "second", "third"]


def test_a_cancelled_request_is_never_handed_out() -> None:
    sched = schedule_of((1, "a"), (2, "b"))
    cancelled = sched.cancel("a")
    assert cancelled is not None and cancelled.id == "a"
    assert sched.cancel("a") is None
    assert "a" not in sched and "b" in sched
    assert sched.next_due() == at(2)
    assert [r.id for r in sched.pop_due(at(10))] == ["b"]


def test_scheduling_an_id_again_moves_it() -> None:
    sched = schedule_of((1, "a"), (2, "b"))
    sched.schedule(at(3), Req("a"))
    assert len(sched) == 2
    assert sched.eta_of("a") == at(3)
    assert [r.id for r in sched.pop_due(at(2))] == ["b"]
    assert [r.id for r in sched.pop_due(at(3))] == ["a"]


def test_the_time_to_the_next_eta_is_never_negative() -> None:
    sched = schedule_of((90, "a"))
    assert sched.seconds_until_next(NOW) == 90.0
    assert sched.seconds_until_next(at(100)) == 0.0
    assert schedule_of().seconds_until_next(NOW) is None


def test_many_cancellations_do_not_grow_the_heap_without_bound() -> None:
    sched: EtaSchedule[Req] = EtaSchedule(key=lambda r: r.id)
    for i in range(5000):
        sched.schedule(at(i), Req(f"r{i}"))
        sched.cancel(f"r{i}")
    sched.schedule(at(1), Req("kept"))
    assert len(sched._heap) < 200
    assert [r.id for r in sched.pop_due(at(10_000))] == ["kept"]


def test_items_has_the_shape_of_celerys_scheduled_reply() -> None:
    sched: EtaSchedule[Req] = EtaSchedule(key=lambda r: r.id)
    sched.schedule(datetime(2026, 11, 21, 10, 2, 2, 449750, tzinfo=UTC), Req("1b74"))
    sched.schedule(datetime(2026, 11, 21, 11, 0, 0, tzinfo=timezone(timedelta(hours=1))), Req("0"))
    assert sched.items(Req.info) == [
        {
            "eta": "2026-11-21T10:00:00+00:00",
            "priority": 6,
            "request": {"id": "0", "name": "proto_app.add", "acknowledged": False},
        },
        {
            "eta": "2026-11-21T10:02:02.449750+00:00",
            "priority": 6,
            "request": {"id": "1b74", "name": "proto_app.add", "acknowledged": False},
        },
    ]


def test_draining_hands_back_everything_held_earliest_first() -> None:
    sched = schedule_of((3, "c"), (1, "a"), (2, "b"))
    sched.cancel("b")
    assert [r.id for r in sched.drain()] == ["a", "c"]
    assert len(sched) == 0 and sched.next_due() is None
