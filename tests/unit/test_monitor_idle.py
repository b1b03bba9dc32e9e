"""What keeps an idle or busy monitor cheap, checked for correctness (the costs are measured in
bench/bench_monitor_ui.py): heartbeats leave the task list's version alone, and a filter that
narrows the last one finds exactly what a full scan finds."""

from __future__ import annotations

import itertools

from amqptool.monitor.core.query import TaskFilter
from amqptool.monitor.core.selectors import SortSpec, select_tasks
from amqptool.monitor.core.state import MonitorState
from tests.unit.test_monitor_state import T0, ev, heartbeat, lifecycle


def test_heartbeats_do_not_mark_the_task_list_stale_task_events_do() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("t1", t=T0), T0)
    version = state.version
    for i in range(10):
        state.apply(heartbeat(host="w1@host", ts=T0 + i), T0 + i)
    assert state.version == version and "w1@host" in state.workers
    state.apply(ev("task-received", uuid="t2", name="app.add"), T0 + 11)
    assert state.version > version


def test_narrowing_is_decided_from_the_filters() -> None:
    parse = TaskFilter.parse
    assert parse("app.add").narrows(parse("app"))
    assert parse("app 42").narrows(parse("app"))
    assert parse("state:FAILURE name:add.x").narrows(parse("state:FAILURE,RETRY name:add"))
    assert parse("worker:w1@h").narrows(parse("worker:w1"))
    assert parse("anything").narrows(parse(""))
    assert not parse("ap").narrows(parse("app"))
    assert not parse("").narrows(parse("app"))
    assert not parse("state:FAILURE,RETRY").narrows(parse("state:FAILURE"))
    assert not parse("name:ad").narrows(parse("name:add"))
    assert not parse("app").narrows(parse("state:FAILURE"))


def test_a_narrowing_filter_finds_what_a_full_scan_finds() -> None:
    state = MonitorState()
    names = ("app.add", "app.addmany", "reports.monthly")
    for i in range(60):
        received, started, end = lifecycle(f"t{i}", fail=i % 4 == 0, t=T0 + i)
        received.update(name=names[i % 3], args=f"({i},)")
        for e in (received, started, end):
            e["hostname"] = f"w{i % 2}@host"
            state.apply(e, T0 + i)
    texts = ["", "app", "app.add", "app.addm", "state:FAILURE app", "worker:w1 app.add", "(1"]
    for wider, narrower in itertools.permutations(texts, 2):
        w, n = TaskFilter.parse(wider), TaskFilter.parse(narrower)
        if not n.narrows(w):
            continue
        last = select_tasks(state, w, SortSpec())
        assert [t for t in last if n.matches(t)] == select_tasks(state, n, SortSpec()), (
            wider,
            narrower,
        )
