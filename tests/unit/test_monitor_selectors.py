"""View selectors and the SQLite store: what the screens show, computed without a screen."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from amqptool.monitor.core.selectors import (
    SortSpec,
    TaskFilter,
    fmt_age,
    fmt_duration,
    header_view,
    select_tasks,
    shorten,
    task_detail,
    task_rows,
    worker_rows,
)
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.store import TaskStore, record_of
from tests.unit.test_monitor_state import T0, ev, heartbeat, lifecycle


@pytest.fixture
def state() -> MonitorState:
    s = MonitorState()
    s.apply(heartbeat(host="w1@host"), T0)
    s.apply(heartbeat(host="w2@host"), T0 - 10)  # offline by now
    s.apply_many(lifecycle("a-ok", clock=10, t=T0 - 30), T0 - 29)
    s.apply_many(lifecycle("b-bad", fail=True, clock=20, t=T0 - 20), T0 - 19)
    s.apply(
        ev(
            "task-received",
            host="w2@host",
            uuid="c-wait",
            name="app.report",
            args="('monthly',)",
            kwargs="{'year': 2026}",
            ts=T0 - 5,
        ),
        T0 - 4,
    )
    return s


def ids(tasks: list[object]) -> list[str]:
    return [t.uuid for t in tasks]  # type: ignore[attr-defined]  # Task objects


# --------------------------------------------------------------------------- filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["c-wait", "b-bad", "a-ok"]),
        ("state:failure", ["b-bad"]),
        ("state:SUCCESS,FAILURE", ["b-bad", "a-ok"]),
        ("name:report", ["c-wait"]),
        ("worker:W2", ["c-wait"]),
        ("monthly", ["c-wait"]),
        ("boom", ["b-bad"]),  # the exception text is searched too
        ("app.add state:success", ["a-ok"]),
        ("nothing-like-this", []),
        ("\"'year': 2026\"", ["c-wait"]),  # a quoted phrase is one word
    ],
)
def test_filter_by_state_name_worker_and_free_text(
    state: MonitorState, text: str, expected: list[str]
) -> None:
    assert ids(select_tasks(state, TaskFilter.parse(text))) == expected


def test_filter_describes_itself_and_knows_when_it_is_empty() -> None:
    filt = TaskFilter.parse("state:failure,retry name:Add worker:w1 some words")
    assert filt.describe() == "state:FAILURE,RETRY name:add worker:w1 some words"
    assert TaskFilter.parse("   ").empty


# --------------------------------------------------------------------------- sort


def test_newest_first_by_default_and_sortable_by_any_column(state: MonitorState) -> None:
    assert ids(select_tasks(state)) == ["c-wait", "b-bad", "a-ok"]
    assert ids(select_tasks(state, sort=SortSpec(None, descending=False))) == [
        "a-ok",
        "b-bad",
        "c-wait",
    ]
    assert ids(select_tasks(state, sort=SortSpec("name", descending=False))) == [
        "a-ok",
        "b-bad",
        "c-wait",
    ]
    assert ids(select_tasks(state, sort=SortSpec("state", descending=False)))[0] == "c-wait"
    assert ids(select_tasks(state, sort=SortSpec("started")))[-1] == "c-wait"  # none last
    for key in ("uuid", "worker", "received", "runtime", "args"):
        assert len(select_tasks(state, sort=SortSpec(key))) == 3


def test_sort_spec_cycles_columns_and_flips_on_the_same_column() -> None:
    spec = SortSpec()
    assert spec.next_column().column == "uuid"
    assert SortSpec("args").next_column().column is None
    assert SortSpec("name", True).by("name") == SortSpec("name", False)
    assert SortSpec("name", False).by("state") == SortSpec("state", True)
    assert SortSpec("received").describe() == "Received ↓"


def test_task_rows_format_the_columns_and_cap_the_count(state: MonitorState) -> None:
    rows, total = task_rows(state, limit=2, tz=UTC)
    assert total == 3 and len(rows) == 2
    assert rows[1].cells == (
        "b-bad",
        "app.add",
        "FAILURE",
        "w1@host",
        "09:56:20",
        "09:56:20",
        "250ms",
        "0",
        "-",
        "ValueError('boom')",
        "(1, 2)",
    )


def test_stored_tasks_join_the_table_when_not_in_memory(state: MonitorState) -> None:
    other = MonitorState()
    other.apply_many(lifecycle("z-old", clock=1, t=T0 - 1000), T0 - 1000)
    other.apply_many(lifecycle("a-ok", clock=1, t=T0 - 1000), T0 - 1000)
    extra = list(other.tasks.values())
    rows, total = task_rows(state, TaskFilter.parse("app.add"), extra=extra)
    assert [(r.uuid, r.stored) for r in rows] == [
        ("b-bad", False),
        ("a-ok", False),
        ("z-old", True),
    ]
    assert total == 3


# --------------------------------------------------------------------------- workers, header


def test_worker_rows_put_online_first_and_show_heartbeat_age(state: MonitorState) -> None:
    rows = worker_rows(state, T0 + 1.5)
    assert [(r.hostname, r.online) for r in rows] == [("w1@host", True), ("w2@host", False)]
    assert rows[0].cells == (
        "w1@host",
        "online",
        "1",
        "7",
        "1",  # succeeded since start (a-ok ran on w1)
        "1",  # failed since start (b-bad)
        "0.50 0.40 0.30",
        "1.5s ago",
        "py-celery 5.7.0",
    )
    assert rows[1].cells[1] == "offline"


def test_header_counts_workers_states_and_rates(state: MonitorState) -> None:
    view = header_view(
        state, T0 + 1, broker="amqp://guest:****@h//", connection="connected", connected=True
    )
    assert (view.workers_online, view.workers_offline) == (1, 1)
    assert view.counts == (("RECEIVED", 1), ("SUCCESS", 1), ("FAILURE", 1))
    assert view.tasks_in_memory == 3 and view.max_tasks == 10_000
    assert len(view.ok_series) == 120
    assert "workers 1 online / 1 offline" in view.summary_line()
    assert "succeeded" in view.rate_line()


# --------------------------------------------------------------------------- detail


def test_task_detail_has_outcome_timeline_and_time_in_queue(state: MonitorState) -> None:
    detail = task_detail(state.tasks["b-bad"], T0, UTC)
    fields = dict(detail.fields)
    assert fields["exception"] == "ValueError('boom')"
    assert fields["time in queue"] == "500ms (since received)"
    assert fields["retries"] == "0"
    assert detail.traceback is not None and "ValueError: boom" in detail.traceback
    assert [(e.event, e.offset) for e in detail.timeline] == [
        ("task-received", "+0ms"),
        ("task-started", "+500ms"),
        ("task-failed", "+750ms"),
    ]
    assert detail.timeline[0].time == "2026-11-21 09:56:20.000"


def test_time_in_queue_counts_from_task_sent_when_the_client_sent_it() -> None:
    s = MonitorState()
    s.apply(ev("task-sent", host="gen1@c", uuid="q", name="n", clock=1, ts=T0), T0)
    s.apply(ev("task-received", uuid="q", clock=2, ts=T0 + 3), T0)
    s.apply(ev("task-started", uuid="q", clock=3, ts=T0 + 4), T0)
    detail = task_detail(s.tasks["q"], T0, UTC)
    assert (detail.queue_wait, detail.queue_wait_from) == (4.0, "sent")
    assert dict(detail.fields)["sent by"] == "gen1@c"


def test_detail_of_a_task_without_any_optional_field() -> None:
    s = MonitorState()
    s.apply({"type": "task-started", "uuid": "bare", "hostname": "w"}, T0)
    detail = task_detail(s.tasks["bare"], T0, UTC)
    assert dict(detail.fields)["name"] == "?"
    assert detail.queue_wait is None


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0004, "0ms"),
        (0.85, "850ms"),
        (2.314, "2.31s"),
        (245, "4m05s"),
        (11520, "3h12m"),
    ],
)
def test_durations_are_short(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text


def test_ages_and_shortened_text() -> None:
    assert fmt_age(None) == "never"
    assert fmt_age(0.42) == "0.4s ago"
    assert fmt_age(300) == "5m ago"
    assert shorten("a\n  b", 10) == "a b"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"
    assert shorten(None, 5) == ""


# --------------------------------------------------------------------------- the SQLite store


def test_the_store_keeps_tasks_across_a_restart_and_the_filter_searches_it(
    tmp_path: Path, state: MonitorState
) -> None:
    path = tmp_path / "monitor.sqlite"
    with TaskStore(path) as store:
        assert store.save(record_of(t) for t in state.tasks.values()) == 3
    with TaskStore(path) as store:  # "restart"
        restored = MonitorState()
        restored.restore(store.load_recent(10))
        assert list(restored.tasks) == ["a-ok", "b-bad", "c-wait"]
        failed = restored.tasks["b-bad"]
        assert (failed.state, failed.exception, failed.runtime) == (
            "FAILURE",
            "ValueError('boom')",
            0.25,
        )
        assert [e[0] for e in failed.timeline] == ["task-received", "task-started", "task-failed"]
        assert [t.uuid for t in store.search(TaskFilter.parse("state:FAILURE"))] == ["b-bad"]
        assert [t.uuid for t in store.search(TaskFilter.parse("monthly"))] == ["c-wait"]
        assert [t.uuid for t in store.search(TaskFilter.parse("worker:w2 name:rep"))] == ["c-wait"]
        assert store.search(TaskFilter.parse("100%_")) == []  # LIKE wildcards are escaped


def test_the_store_replaces_updated_tasks_and_prunes_old_rows(tmp_path: Path) -> None:
    s = MonitorState()
    with TaskStore(tmp_path / "s.sqlite", max_rows=50) as store:
        for i in range(1200):
            s.apply_many(lifecycle(f"t{i:04d}", clock=10 * i), T0 + i)
        store.save(record_of(t) for t in s.tasks.values())
        store.save(record_of(t) for t in s.tasks.values())  # same uuids: replaced
        assert store.count() == 50
        assert [t.uuid for t in store.load_recent(2)] == ["t1198", "t1199"]


def test_a_bad_state_file_is_a_usage_error(tmp_path: Path) -> None:
    from amqptool.errors import UsageError

    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError, match="cannot open the SQLite file"):
        TaskStore(bad)
