"""The monitor's event-state model, folded with a fake clock (no broker, no UI)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.codec.events import decode_events, encode_event, encode_event_batch
from amqptool.monitor.core.state import MonitorState

T0 = 1_795_255_000.0


class FakeClock:
    """The time the test says it is; the model never reads a real clock."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


_clock = itertools.count(1)


def ev(
    etype: str, *, host: str = "w1@host", ts: float | None = None, **fields: Any
) -> dict[str, Any]:
    """An event body as a Celery 5.7 worker sends it (docs/protocol.md §3.2)."""
    body: dict[str, Any] = {
        "hostname": host,
        "utcoffset": 0.0,
        "pid": 4242,
        "clock": fields.pop("clock", next(_clock)),
        **fields,
        "timestamp": T0 if ts is None else ts,
        "type": etype,
    }
    return body


def heartbeat(host: str = "w1@host", freq: float = 2.0, **fields: Any) -> dict[str, Any]:
    base = {
        "freq": freq,
        "active": 1,
        "processed": 7,
        "loadavg": [0.5, 0.4, 0.3],
        "sw_ident": "py-celery",
        "sw_ver": "5.7.0",
        "sw_sys": "Linux",
    }
    base.update(fields)
    return ev("worker-heartbeat", host=host, **base)


def lifecycle(
    uuid: str, *, fail: bool = False, t: float = T0, clock: int = 100
) -> list[dict[str, Any]]:
    received = ev(
        "task-received",
        ts=t,
        clock=clock,
        uuid=uuid,
        name="app.add",
        args="(1, 2)",
        kwargs="{}",
        root_id=uuid,
        parent_id=None,
        retries=0,
        eta=None,
        expires=None,
    )
    started = ev("task-started", ts=t + 0.5, clock=clock + 1, uuid=uuid)
    if fail:
        end = ev(
            "task-failed",
            ts=t + 0.75,
            clock=clock + 2,
            uuid=uuid,
            exception="ValueError('boom')",
            traceback="Traceback (most recent call last):\nValueError: boom\n",
        )
    else:
        end = ev(
            "task-succeeded", ts=t + 0.75, clock=clock + 2, uuid=uuid, result="3", runtime=0.25
        )
    return [received, started, end]


def total(state: MonitorState) -> int:
    return sum(state.counts.values())


# --------------------------------------------------------------------------- lifecycle


def test_a_task_goes_received_started_succeeded_with_its_fields_and_timeline() -> None:
    clock = FakeClock()
    state = MonitorState()
    for event in lifecycle("t1"):
        state.apply(event, clock.advance(0.1))
    task = state.tasks["t1"]
    assert task.state == "SUCCESS"
    assert (task.name, task.args, task.kwargs, task.result) == ("app.add", "(1, 2)", "{}", "3")
    assert task.runtime == 0.25
    assert task.worker == "w1@host"
    assert (task.received, task.started, task.succeeded) == (T0, T0 + 0.5, T0 + 0.75)
    assert [e[0] for e in task.timeline] == ["task-received", "task-started", "task-succeeded"]
    assert state.counts == {"RECEIVED": 0, "STARTED": 0, "SUCCESS": 1}
    assert state.event_count == 3


def test_a_failed_task_keeps_exception_and_traceback_and_gets_a_runtime() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("t1", fail=True), T0)
    task = state.tasks["t1"]
    assert task.state == "FAILURE"
    assert task.exception == "ValueError('boom')"
    assert task.traceback is not None and "ValueError: boom" in task.traceback
    assert task.runtime == pytest.approx(0.25)  # from started to failed


def test_a_retried_task_loops_back_and_finishes() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("t1")[:2], T0)
    state.apply(ev("task-retried", clock=103, ts=T0 + 1, uuid="t1", exception="E()"), T0)
    assert state.tasks["t1"].state == "RETRY"
    state.apply(ev("task-received", clock=104, ts=T0 + 2, uuid="t1", name="app.add", retries=1), T0)
    state.apply(ev("task-started", clock=105, ts=T0 + 2.1, uuid="t1"), T0)
    state.apply(ev("task-succeeded", clock=106, ts=T0 + 2.2, uuid="t1", result="3"), T0)
    task = state.tasks["t1"]
    assert (task.state, task.retries) == ("SUCCESS", 1)
    assert [e[0] for e in task.timeline].count("task-received") == 2


def test_revoked_and_rejected_tasks_show_their_flags() -> None:
    state = MonitorState()
    state.apply(ev("task-received", uuid="r1", name="app.sleep"), T0)
    state.apply(ev("task-revoked", uuid="r1", terminated=True, signum=15, expired=False), T0)
    state.apply(ev("task-received", uuid="j1", name="app.bad"), T0)
    state.apply(ev("task-rejected", uuid="j1", requeue=False), T0)
    revoked, rejected = state.tasks["r1"], state.tasks["j1"]
    assert (revoked.state, revoked.terminated, revoked.signum) == ("REVOKED", True, 15)
    assert (rejected.state, rejected.requeue) == ("REJECTED", False)


def test_task_sent_from_a_client_sets_pending_and_the_routing() -> None:
    state = MonitorState()
    state.apply(
        ev(
            "task-sent",
            host="gen77@client",
            uuid="s1",
            name="app.add",
            queue="celery",
            exchange="",
            routing_key="celery",
        ),
        T0,
    )
    task = state.tasks["s1"]
    assert (task.state, task.client, task.worker, task.queue) == (
        "PENDING",
        "gen77@client",
        None,
        "celery",
    )
    assert "gen77@client" not in state.workers  # clients are not workers


def test_a_custom_event_sets_a_custom_state_with_its_fields() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("t1")[:2], T0)
    state.apply(ev("task-progress", uuid="t1", clock=150, current=3, total=10), T0)
    task = state.tasks["t1"]
    assert task.state == "PROGRESS"
    assert task.extra == {"current": 3, "total": 10}
    state.apply(ev("task-succeeded", uuid="t1", clock=160, result="ok"), T0)
    assert state.tasks["t1"].state == "SUCCESS"


# --------------------------------------------------------------------------- order and duplicates


def test_events_out_of_order_settle_by_precedence() -> None:
    received, started, succeeded = lifecycle("t1")
    state = MonitorState()
    for event in (succeeded, started, received):
        state.apply(event, T0)
    task = state.tasks["t1"]
    assert task.state == "SUCCESS"
    # the late "received" still fills what only it carries
    assert (task.name, task.args) == ("app.add", "(1, 2)")
    assert task.result == "3"
    assert [e[0] for e in task.timeline] == ["task-received", "task-started", "task-succeeded"]
    assert state.counts == {"SUCCESS": 1}


def test_a_late_event_never_overwrites_a_later_outcome() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("t1", fail=True), T0)
    state.apply(ev("task-started", uuid="t1", clock=101, ts=T0 + 0.5), T0)
    assert state.tasks["t1"].state == "FAILURE"
    assert state.tasks["t1"].exception == "ValueError('boom')"


def test_a_late_retried_event_is_ordered_by_the_lamport_clock() -> None:
    # attempt 1: received(10) started(11) retried(12); attempt 2: received(13) started(14)
    state = MonitorState()
    state.apply(ev("task-received", uuid="t1", clock=10, ts=T0, name="app.flaky"), T0)
    state.apply(ev("task-started", uuid="t1", clock=11, ts=T0 + 1), T0)
    state.apply(ev("task-received", uuid="t1", clock=13, ts=T0 + 3, retries=1), T0)
    state.apply(ev("task-started", uuid="t1", clock=14, ts=T0 + 4), T0)
    state.apply(ev("task-retried", uuid="t1", clock=12, ts=T0 + 2, exception="E()"), T0)
    task = state.tasks["t1"]
    assert task.state == "STARTED"  # Celery's State would wrongly show RETRY here
    assert task.exception == "E()"  # the late event still fills empty fields
    assert task.retries == 1


def test_duplicate_events_change_nothing() -> None:
    state = MonitorState()
    events = lifecycle("t1")
    state.apply_many(events, T0)
    before = (copy.copy(state.counts), list(state.tasks["t1"].timeline))
    state.apply_many(copy.deepcopy(events), T0 + 0.5)
    assert (state.counts, state.tasks["t1"].timeline) == before
    assert state.throughput.series(T0, 1)[0] == [1]  # succeeded counted once
    assert state.task_count == 1


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(6)), st.booleans())
def test_any_arrival_order_of_a_lifecycle_gives_the_same_task(order: list[int], fail: bool) -> None:
    events = lifecycle("p1", fail=fail, clock=500)
    events.append(ev("task-started", uuid="p1", clock=501, ts=T0 + 0.5))  # duplicate
    events.append(heartbeat())
    events.append(lifecycle("p1", fail=fail, clock=500)[0])  # duplicate received
    state = MonitorState()
    for i in order:
        state.apply(events[i], T0)
    task = state.tasks["p1"]
    assert task.state == ("FAILURE" if fail else "SUCCESS")
    assert (task.name, task.args) == ("app.add", "(1, 2)")
    assert len(task.timeline) == 3
    assert state.counts.get("FAILURE" if fail else "SUCCESS") == 1
    assert total(state) == 1


# --------------------------------------------------------------------------- tolerance


def test_missing_optional_fields_are_tolerated() -> None:
    state = MonitorState()
    # a v1 task (args null), an event without timestamp/clock, a forced heartbeat (freq 5)
    state.apply({"type": "task-received", "uuid": "v1", "hostname": "w1@h", "args": None}, T0)
    state.apply({"type": "task-started", "uuid": "v1", "hostname": "w1@h"}, T0 + 1)
    state.apply(
        {
            "type": "worker-heartbeat",
            "hostname": "w2@h",
            "freq": 5,
            "sw_ident": "py-celery",
            "sw_ver": "5.7.0",
            "sw_sys": "Linux",
            "timestamp": T0,
        },
        T0,
    )
    task = state.tasks["v1"]
    assert (task.state, task.name, task.args, task.started) == ("STARTED", None, None, T0 + 1)
    worker = state.workers["w2@h"]
    assert (worker.freq, worker.active, worker.processed, worker.loadavg) == (5.0, None, None, None)
    assert worker.is_online(T0 + 9.9) and not worker.is_online(T0 + 10.0)


def test_unknown_event_types_are_counted_not_raised() -> None:
    state = MonitorState()
    state.apply({"type": "flower-thing", "hostname": "x"}, T0)
    state.apply(ev("worker-elect", id="1", topic="t", action="a", cver=1), T0)  # gossip: ignored
    state.apply(ev("worker-something-new"), T0)
    assert state.unknown_events == 2
    assert state.events_by_type["flower-thing"] == 1
    assert state.event_count == 3


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"type": 5},
        {"type": "task-received", "hostname": "w"},  # no uuid
        {"type": "task-started", "uuid": 42},
        {"type": "worker-heartbeat"},  # no hostname
        ["not", "a", "dict"],
    ],
)
def test_malformed_events_are_counted_and_skipped(bad: Any) -> None:
    state = MonitorState()
    state.apply(bad, T0)
    assert state.malformed == 1
    assert state.tasks == {} and state.workers == {}


def test_odd_field_types_do_not_break_the_fold() -> None:
    state = MonitorState()
    state.apply(
        {"type": "task-received", "uuid": "o1", "hostname": "w", "timestamp": "soon", "clock": "x"},
        T0,
    )
    state.apply(
        {"type": "worker-heartbeat", "hostname": "w", "freq": "fast", "loadavg": ["a", 1]}, T0
    )
    assert state.tasks["o1"].received == T0  # unparsable timestamp: receipt time
    assert state.workers["w"].freq == 2.0
    assert state.workers["w"].loadavg == [0.0, 1.0]


def test_applying_never_mutates_the_event() -> None:
    events = lifecycle("t1")
    frozen = copy.deepcopy(events)
    MonitorState().apply_many(events, T0)
    assert events == frozen


def test_task_multi_batches_decode_and_fold_like_single_events() -> None:
    batch = encode_event_batch(lifecycle("m1") + lifecycle("m2", fail=True), hostname="w1@host")
    single = encode_event(heartbeat())
    state = MonitorState()
    for env in (single, batch):
        state.apply_many(decode_events(env), T0)
    assert state.tasks["m1"].state == "SUCCESS"
    assert state.tasks["m2"].state == "FAILURE"
    assert state.workers["w1@host"].processed == 7
    assert state.event_count == 7


# --------------------------------------------------------------------------- workers


def test_a_worker_goes_offline_after_two_heartbeat_intervals_and_comes_back() -> None:
    clock = FakeClock()
    state = MonitorState()
    state.apply(heartbeat(freq=2.0), clock.now)
    worker = state.workers["w1@host"]
    assert worker.is_online(clock.advance(3.9))
    assert not worker.is_online(clock.advance(0.1))  # 4.0 s = 2 x freq without a heartbeat
    assert state.workers_online(clock.now) == (0, 1)
    state.apply(heartbeat(freq=2.0), clock.advance(1.0))
    assert worker.is_online(clock.now)
    assert worker.heartbeat_age(clock.advance(1.5)) == pytest.approx(1.5)


def test_worker_offline_event_is_offline_at_once_until_the_next_heartbeat() -> None:
    clock = FakeClock()
    state = MonitorState()
    state.apply(ev("worker-online", freq=2.0, sw_ver="5.7.0"), clock.now)
    state.apply(ev("worker-offline", freq=2.0), clock.advance(0.5))
    worker = state.workers["w1@host"]
    assert not worker.is_online(clock.now)
    # a late task event does not bring it back; a heartbeat (a restarted worker) does
    state.apply(ev("task-succeeded", uuid="late", result="1"), clock.advance(0.1))
    assert not worker.is_online(clock.now)
    state.apply(heartbeat(), clock.advance(0.1))
    assert worker.is_online(clock.now)


def test_task_events_count_as_heartbeats() -> None:
    clock = FakeClock()
    state = MonitorState()
    state.apply(heartbeat(freq=2.0), clock.now)
    state.apply(ev("task-received", uuid="t", name="n"), clock.advance(3.0))
    assert state.workers["w1@host"].is_online(clock.advance(3.0))  # 6 s after the heartbeat


def test_local_received_from_the_feed_is_the_heartbeat_time() -> None:
    state = MonitorState()
    state.apply(heartbeat(local_received=T0 + 100), T0 + 200)
    assert state.workers["w1@host"].last_heartbeat == T0 + 100


def test_offline_workers_are_forgotten_after_the_configured_time() -> None:
    clock = FakeClock()
    state = MonitorState(forget_offline=60)
    state.apply(heartbeat(host="gone@h"), clock.now)
    state.apply(heartbeat(host="alive@h"), clock.now)
    clock.advance(30)
    state.apply(heartbeat(host="alive@h"), clock.now)
    assert state.expire(clock.advance(30)) == []  # offline since T0+4: 56 s, kept (greyed)
    state.apply(heartbeat(host="alive@h"), clock.now)
    assert state.expire(clock.advance(5)) == ["gone@h"]
    assert set(state.workers) == {"alive@h"}


# --------------------------------------------------------------------------- memory bound


def test_the_task_bound_is_enforced_and_keeps_the_newest() -> None:
    state = MonitorState(max_tasks=100)
    for i in range(1000):
        state.apply_many(lifecycle(f"t{i:04d}", clock=10 * i), T0 + i)
    assert len(state.tasks) == 100
    assert set(state.tasks) == {f"t{i:04d}" for i in range(900, 1000)}
    assert state.evicted == 900
    assert total(state) == 100
    assert state.task_count == 1000


def test_failed_tasks_are_kept_in_preference_to_succeeded_ones() -> None:
    state = MonitorState(max_tasks=10)
    for i in range(4):
        state.apply_many(lifecycle(f"f{i}", fail=True, clock=10 * i), T0)
    for i in range(50):
        state.apply_many(lifecycle(f"s{i}", clock=1000 + 10 * i), T0)
    assert {f"f{i}" for i in range(4)} <= set(state.tasks)
    assert len(state.tasks) == 10
    assert {u for u in state.tasks if u.startswith("s")} == {f"s{i}" for i in range(44, 50)}


def test_failed_tasks_never_take_more_than_their_share() -> None:
    state = MonitorState(max_tasks=10)  # failed_share 0.5: at most 5 failed kept
    for i in range(30):
        state.apply_many(lifecycle(f"f{i:02d}", fail=True, clock=10 * i), T0)
    state.apply(ev("task-received", uuid="new", name="app.add"), T0)
    assert "new" in state.tasks
    failed = sorted(u for u in state.tasks if u.startswith("f"))
    assert len(state.tasks) == 10
    assert failed[-5:] == [f"f{i:02d}" for i in range(25, 30)]  # the newest failures


def test_running_tasks_outlive_succeeded_ones() -> None:
    state = MonitorState(max_tasks=5)
    state.apply(ev("task-received", uuid="long", name="app.sleep"), T0)
    state.apply(ev("task-started", uuid="long"), T0)
    for i in range(20):
        state.apply_many(lifecycle(f"s{i}", clock=1000 + 10 * i), T0)
    assert state.tasks["long"].state == "STARTED"


def test_changed_tasks_are_tracked_for_the_store() -> None:
    state = MonitorState(track_changes=True, max_tasks=2)
    for i in range(3):
        state.apply_many(lifecycle(f"t{i}", clock=10 * i), T0)
    assert state.drain_changed() == {"t1", "t2"}  # t0 was evicted
    assert state.drain_changed() == set()


# --------------------------------------------------------------------------- throughput


def test_throughput_counts_succeeded_and_failed_per_second() -> None:
    clock = FakeClock(T0)
    state = MonitorState()
    for i in range(6):
        state.apply_many(lifecycle(f"ok{i}", clock=10 * i), clock.now)
    state.apply_many(lifecycle("bad", fail=True, clock=900), clock.now)
    clock.advance(1.0)
    for i in range(3):
        state.apply_many(lifecycle(f"ok2-{i}", clock=2000 + 10 * i), clock.now)
    ok, failed = state.throughput.series(clock.now, 3)
    assert (ok, failed) == ([0, 6, 3], [0, 1, 0])
    ok_rate, fail_rate = state.throughput.rate(clock.advance(1.0), seconds=2)
    assert (ok_rate, fail_rate) == (4.5, 0.5)


def test_throughput_forgets_buckets_older_than_its_window() -> None:
    state = MonitorState(throughput_window=10)
    state.apply_many(lifecycle("a"), T0)
    assert state.throughput.series(T0 + 20, 10) == ([0] * 10, [0] * 10)


def test_restore_seeds_tasks_and_keeps_the_bound() -> None:
    source = MonitorState()
    for i in range(5):
        source.apply_many(lifecycle(f"t{i}", clock=10 * i), T0)
    target = MonitorState(max_tasks=3)
    assert target.restore(list(source.tasks.values())) == 5
    assert list(target.tasks) == ["t2", "t3", "t4"]
    assert target.counts == {"SUCCESS": 3}
