"""The monitor's new views driven by Pilot, with SVG snapshots: task types (totals since start,
runtime percentiles) and per-worker totals, both surviving the in-memory bound."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from amqptool.monitor.screens import TaskTypesScreen
from amqptool.monitor.state import MonitorState
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
