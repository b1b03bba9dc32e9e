"""Graphs over time: the history the state keeps (10 s buckets, an hour), kept across restarts
by ``--state``, and the graphs screen (textual-plotext) driven by Pilot, with a snapshot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual_plotext import PlotextPlot

from amqptool.monitor.core.history import BUCKET_SECONDS
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.main import build_app
from amqptool.monitor.messages import QueuesUpdated
from amqptool.monitor.queues import QueueDepth
from amqptool.monitor.screens import GraphsScreen
from amqptool.monitor.store import TaskStore
from amqptool.settings import BrokerSettings
from tests.ui.test_monitor_app import NOW, make_app, sync
from tests.unit.test_monitor_state import lifecycle

SIZE = (130, 40)


def twenty_minutes(state: MonitorState, end: float = NOW) -> MonitorState:
    """One task every 5 s for 20 minutes; every 6th fails; runtimes grow with time."""
    for i in range(240):
        t = end - 1200 + 5 * i
        fail = i % 6 == 0
        received, started, finished = lifecycle(f"g-{i}", fail=fail, t=t)
        finished["runtime"] = 0.1 + i / 1000
        for event in (received, started, finished):
            state.apply(event, t)
    return state


def test_the_history_covers_15_minutes_in_10_second_buckets() -> None:
    state = twenty_minutes(MonitorState(max_tasks=10))
    series = state.history.series(NOW, 15)
    assert len(series.minutes) == 15 * 60 // BUCKET_SECONDS
    assert series.minutes[-1] == 0.0 and series.minutes[0] == -89 * BUCKET_SECONDS / 60
    # the buckets from NOW - 890 s: tasks 62..239, of which every 6th (66..234) failed
    assert round(sum(series.throughput) * BUCKET_SECONDS) == 178 - 29
    assert round(sum(series.failures) * BUCKET_SECONDS) == 29
    p95 = [v for v in series.p95 if v is not None]
    assert len(p95) == 89 and p95[-1] > p95[0]  # runtimes grew (no task in the last bucket)
    assert len(state.history.series(NOW, 60).minutes) == 360


def test_the_graphs_survive_a_restart_with_the_state_file(tmp_path: Path) -> None:
    now = time.time()
    state = twenty_minutes(MonitorState(), end=now)
    state.history.depth(42, now - 30)
    with TaskStore(tmp_path / "state.db") as store:
        store.save_history(state.history.drain(), int(now) - 3600)
    before = state.history.series(now, 15)
    with TaskStore(tmp_path / "state.db") as store:
        app = build_app(BrokerSettings.from_url("amqp://guest:guest@127.0.0.1//"), store=store)
        after = app.state.history.series(now, 15)
    assert after.throughput == before.throughput and after.failures == before.failures
    assert 42 in after.depth
    assert [round(v, 6) if v else v for v in after.p95] == [
        round(v, 6) if v else v for v in before.p95
    ]


@sync
async def test_h_opens_the_graphs_with_queue_depth_from_the_poller() -> None:
    app = make_app(state=twenty_minutes(MonitorState()))
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(QueuesUpdated([QueueDepth("celery", 17, 1), QueueDepth("b", 3, 1)]))
        await pilot.pause()
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, GraphsScreen)
        await pilot.pause()
        assert screen.drawn is not None and 20 in screen.drawn.depth
        assert len(screen.query(PlotextPlot)) == 4
        await pilot.press("plus")
        assert screen.minutes == 30 and len(screen.drawn.minutes) == 180
        await pilot.press("escape")
        assert not isinstance(app.screen, GraphsScreen)


def test_graphs_snapshot(snap_compare: Any) -> None:
    async def open_graphs(pilot: Pilot[Any]) -> None:
        await pilot.press("h")
        await pilot.pause()

    app = make_app(state=twenty_minutes(MonitorState()))
    assert snap_compare(app, terminal_size=SIZE, run_before=open_graphs)
