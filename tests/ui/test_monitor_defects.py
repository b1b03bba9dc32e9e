"""The live monitor's reported defects, driven by Pilot: paste after ``/``, a refused login,
confirmations at 80x24, the narrow layout, state colours, the cursor row, the palette screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.style import Style
from textual import events
from textual.widgets import Input

from amqptool.monitor.actions import Outcome, ping_action
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import FeedStatus
from amqptool.monitor.messages import ActionFinished, FeedChanged, QueuesUpdated, StoreMatches
from amqptool.monitor.queues import QueueDepth
from amqptool.monitor.screens import ConfirmScreen
from amqptool.monitor.widgets import GridTable
from tests.ui.test_monitor_app import NOW, FakeControl, FakeFeed, load, make_app, screen_text, sync
from tests.unit.test_monitor_state import ev

SMALL = (80, 24)


def burst(app: object, text: str) -> None:
    """Keys as a terminal without bracketed paste delivers them: all queued before any runs."""
    for char in text:
        key = "slash" if char == "/" else char
        app.post_message(events.Key(key, char))  # type: ignore[attr-defined]  # an App


def filter_box(app: object) -> Input:
    return app.query_one("#filter", Input)  # type: ignore[attr-defined, no-any-return]  # an App


@sync
async def test_fast_keys_after_slash_land_in_the_filter_and_never_quit() -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        sort_before = app.sort
        burst(app, "/quick")
        await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.return_code is None
        assert filter_box(app).value == "quick"
        assert app.focused is filter_box(app)
        await pilot.press("escape")
        burst(app, "/sss")
        await pilot.pause()
        await pilot.pause()
        assert filter_box(app).value == "sss"
        assert app.sort == sort_before  # s is the sort key: it was not run


@sync
async def test_a_bracketed_paste_beginning_with_slash_is_the_filter() -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        app.post_message(events.Paste("/quick"))
        await pilot.pause()
        await pilot.pause()
        assert app.is_running
        assert filter_box(app).value == "quick"
        assert app.filter.words == ("quick",)
        # a second paste while the filter has focus goes into the box as typed
        app.post_message(events.Paste(" state:FAILURE"))
        await pilot.pause()
        assert filter_box(app).value == "quick state:FAILURE"


@sync
async def test_a_refused_login_stays_in_the_header_and_quitting_exits_71() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed)
    async with app.run_test(size=SMALL) as pilot:
        reason = "the broker refused the login (ACCESS_REFUSED) as user 'guest'"
        app.post_message(FeedChanged(FeedStatus("failed", reason, NOW, 0, None, 71)))
        app.post_message(FeedChanged(FeedStatus("stopped", "", NOW)))
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "ACCESS_REFUSED" in text and "stopped" not in text
        await pilot.press("q")
    assert app.return_code == 71


@sync
async def test_the_terminate_confirmation_shows_the_whole_id_and_the_warning_at_80x24() -> None:
    app = make_app(control=FakeControl())
    async with app.run_test(size=SMALL) as pilot:
        uuid = app.tasks_table.cursor_key
        assert uuid is not None
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.pause()
        text = " ".join(screen_text(app).split())
        assert uuid in text
        assert "threads or solo pool cannot stop a running task" in text
        assert "runs to its end." in text


@sync
async def test_at_80x24_the_header_counts_and_worker_names_are_whole() -> None:
    state = load(MonitorState())
    state.apply(ev("task-revoked", uuid="r-1", host="alpha@node1", ts=NOW - 2), NOW - 2)
    state.apply(ev("task-retried", uuid="r-2", host="alpha@node1", ts=NOW - 2), NOW - 2)
    app = make_app(state=state)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        for label in ("SUCCESS 7", "FAILURE 2", "REVOKED 1", "RETRY 1", "workers 2 online"):
            assert label in text, label
        for name in ("alpha@node1", "beta@node2", "gamma@node3"):
            assert name in text, name


def _state_style(table: GridTable, state: str, line: int) -> Style:
    strip = table.render_line(line)
    return next(seg.style for seg in strip if seg.text.strip() == state and seg.style)


@sync
async def test_retry_failure_and_revoked_have_distinct_colours_off_the_cursor_row() -> None:
    state = MonitorState()
    for i, etype in enumerate(("task-failed", "task-retried", "task-revoked", "task-succeeded")):
        state.apply(ev(etype, uuid=f"t-{i}", host="w@h", ts=NOW - 10 + i), NOW - 10 + i)
    app = make_app(state=state)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.pause()
        table = app.tasks_table
        table.cursor = 0  # newest first: SUCCESS on the cursor row
        lines = {table.items[i].state: i + 1 for i in range(len(table.items))}
        colours = {
            s: _state_style(table, s, lines[s]).color for s in ("FAILURE", "RETRY", "REVOKED")
        }
        assert len(set(colours.values())) == 3, colours
        # the cursor row has one foreground: no state colour on the accent background
        cursor_strip = table.render_line(1)
        assert len({seg.style.color for seg in cursor_strip if seg.text.strip() and seg.style}) == 1


@sync
async def test_the_palette_screenshot_works_without_a_downloads_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.chdir(work)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        for _ in range(50):
            if list(work.glob("*.svg")):
                break
            await pilot.pause(0.1)
    assert not (home / "Downloads").exists()
    shots = list(work.glob("*.svg"))
    assert len(shots) == 1 and "amqptool" in shots[0].read_text()
    assert os.getcwd() == str(work)


@sync
async def test_what_arrives_after_the_screens_are_gone_is_dropped_quietly() -> None:
    """A refresh tick, a feed status, queue depths, an action's reply or stored matches that
    land while the app is shutting down (no screen left) must not end the monitor with a
    traceback."""
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
    assert not app.screen_stack
    app._tick()
    app.on_feed_changed(FeedChanged(FeedStatus("failed", "gone")))
    app.on_queues_updated(QueuesUpdated([QueueDepth("celery", 3, 1)]))
    app.on_action_finished(ActionFinished(Outcome(ping_action("w1@h"), "pong", "information")))
    app.on_store_matches(StoreMatches(app.filter, []))
