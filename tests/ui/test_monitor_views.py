"""The monitor's new views driven by Pilot, with SVG snapshots: task types (totals since start,
runtime percentiles) and per-worker totals, both surviving the in-memory bound."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.screens import TaskTypesScreen
from amqptool.monitor.widgets import GridTable
from tests.ui.test_monitor_app import NOW, load, make_app, screen_text, sync
from tests.unit.test_monitor_state import lifecycle

SIZE = (130, 36)


def busy_state() -> MonitorState:
    """The demo data, then 300 more tasks through a state that keeps only 20 in memory."""
    state = load(MonitorState(max_tasks=20))
    for i in range(300):
        name = "reports.monthly" if i % 3 == 0 else "app.add"
        host = "alpha@node1" if i % 2 else "beta@node2"
        received, started, end = lifecycle(f"b-{i}", fail=i % 10 == 0, t=NOW - 50 + i / 10)
        for e in (received, started, end):
            e["hostname"] = host
        received["name"] = name
        end["runtime"] = 0.05 + (i % 7) / 100
        for e in (received, started, end):
            state.apply(e, NOW - 50 + i / 10)
    return state


@sync
async def test_the_task_types_view_counts_every_task_since_start() -> None:
    app = make_app(state=busy_state())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("T")
        assert isinstance(app.screen, TaskTypesScreen)
        await pilot.pause()
        table = app.screen.query_one("#types", GridTable)
        rows = {row.name: row.cells for row in table.items}
        assert len(app.state.tasks) == 20  # memory forgot; the totals did not
        # 200 + 9 demo app.add tasks, 20 + 1 failed; 100 + 3 reports.monthly, 10 + 1 failed
        # (the demo's last three tasks never finish)
        assert rows["app.add"][1:5] == ("209", "185", "21", "0")
        assert rows["reports.monthly"][1:5] == ("103", "92", "11", "0")
        assert all(cell.endswith("ms") for cell in rows["app.add"][6:9])
        text = screen_text(app)
        assert "task types: totals since start" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TaskTypesScreen)


@sync
async def test_worker_rows_show_totals_since_start_and_the_header_too() -> None:
    app = make_app(state=busy_state())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows = {row.hostname: row.cells for row in app.workers_table.items}
        # odd tasks ran on alpha; every 10th (even) one failed, on beta
        assert rows["alpha@node1"][4:6] == ("153", "1")  # OK, Failed
        assert rows["beta@node2"][4:6] == ("124", "31")
        text = screen_text(app)
        assert "SUCCESS 277" in text and "FAILURE 32" in text


async def _types(pilot: Pilot[Any]) -> None:
    await pilot.press("T")
    await pilot.pause()


def test_task_types_snapshot(snap_compare: Any) -> None:
    assert snap_compare(make_app(state=busy_state()), terminal_size=SIZE, run_before=_types)


def test_main_screen_at_80x24_snapshot(snap_compare: Any) -> None:
    assert snap_compare(make_app(state=busy_state()), terminal_size=(80, 24))


def family_state() -> MonitorState:
    """A parent task with two children (one retried, one failed) and an ETA task."""
    state = MonitorState()
    t = NOW - 30
    received, started, end = lifecycle("parent-1", t=t)
    received["name"] = "app.chord"
    for e in (received, started, end):
        state.apply(e, t)
    for i, fail in enumerate((False, True)):
        kid = f"child-{i}"
        received, started, end = lifecycle(kid, fail=fail, t=t + 1 + i)
        received.update(name="app.part", parent_id="parent-1", root_id="parent-1", retries=2 * i)
        for e in (received, started, end):
            state.apply(e, t + 1 + i)
    received, _, _ = lifecycle("later-1", t=t + 5)
    received.update(name="app.later", eta="2026-11-20T10:30:00.000000+00:00")
    state.apply(received, t + 5)
    return state


@sync
async def test_result_retries_and_eta_columns_and_the_family_in_the_detail() -> None:
    app = make_app(state=family_state())
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        rows = {t.uuid: app.tasks_table.row(i).cells for i, t in enumerate(app.tasks_table.items)}
        titles = [c.title for c in app.tasks_table.columns]
        cell = {uuid: dict(zip(titles, cells, strict=True)) for uuid, cells in rows.items()}
        assert cell["child-1"]["Result"] == "ValueError('boom')"
        assert cell["child-1"]["Retries"] == "2"
        assert cell["parent-1"]["Result"] == "3"
        assert cell["later-1"]["ETA"] == "11-20 10:30:00"
        text = screen_text(app)
        assert "ValueError(" in text and "11-20 10:30:00" in text
        app.open_detail("parent-1")
        await pilot.pause()
        text = screen_text(app)
        assert "parent and children" in text
        assert "child-0" in text and "child-1" in text and "app.part" in text
        await pilot.press("escape")
        app.open_detail("child-1")
        await pilot.pause()
        text = screen_text(app)
        assert "parent" in text and "parent-1" in text and "app.chord" in text


def test_detail_with_children_snapshot(snap_compare: Any) -> None:
    async def open_parent(pilot: Pilot[Any]) -> None:
        pilot.app.open_detail("parent-1")  # type: ignore[attr-defined]  # a MonitorApp
        await pilot.pause()

    assert snap_compare(make_app(state=family_state()), terminal_size=SIZE, run_before=open_parent)
