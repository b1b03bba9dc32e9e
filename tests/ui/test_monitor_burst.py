"""A burst folded in chunks (keys are handled between them, events stay in order) and the
filter box narrowing its last matches, driven by Pilot. Latencies are measured in bench/."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events as events_module
from textual.widgets import Input

from amqptool.monitor.background import INGEST_CHUNK
from amqptool.monitor.core.selectors import select_tasks
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.screens import HelpScreen
from tests.ui.test_monitor_app import FakeFeed, make_app, sync
from tests.unit.test_monitor_state import lifecycle


@sync
async def test_a_big_batch_is_folded_in_chunks_in_order_and_a_key_gets_in_between() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed, state=MonitorState())
    events: list[dict[str, Any]] = []
    for n in range(5000):
        events.extend(lifecycle(f"burst-{n}", clock=3 * n + 1, t=1_795_255_000.0 + n / 1000))
    async with app.run_test(size=(130, 36)) as pilot:
        await asyncio.to_thread(feed.ready.wait, 5)
        folded_when_pressed: list[int] = []
        show_help = app.action_help

        def spy() -> None:
            folded_when_pressed.append(app.state.event_count)
            show_help()

        app.action_help = spy  # type: ignore[method-assign]  # records when the key ran
        feed.push(events)  # one batch of 15 000 events, from the feed's thread
        app.post_message(events_module.Key("question_mark", "?"))  # as a terminal sends it
        for _ in range(200):
            if isinstance(app.screen, HelpScreen):
                break
            await pilot.pause(0.01)
        assert isinstance(app.screen, HelpScreen)
        assert folded_when_pressed and folded_when_pressed[0] < len(events)  # between chunks
        for _ in range(200):
            if app.state.event_count == len(events):
                break
            await pilot.pause(0.05)
        assert app.state.event_count == len(events)
        assert all(t.state == "SUCCESS" for t in app.state.tasks.values())
        assert list(app.state.tasks)[-1] == "burst-4999"  # arrival order kept
        assert len(events) > 10 * INGEST_CHUNK


@sync
async def test_typing_on_in_the_filter_shows_what_a_full_scan_shows() -> None:
    app = make_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("slash", "a")  # every demo task: app.add and reports.monthly
        await pilot.pause()
        wide = list(app.tasks_table.items)
        await pilot.press(*"pp.add")
        await pilot.pause()
        narrowed = list(app.tasks_table.items)
        assert app.query_one("#filter", Input).value == "app.add"
        assert narrowed == select_tasks(app.state, app.filter, app.sort)
        assert 0 < len(narrowed) < len(wide)
        await pilot.press(*["backspace"] * 6)  # wider again: a full scan
        await pilot.pause()
        assert list(app.tasks_table.items) == wide
