"""The Textual app driven by Pilot: keys, sort, filter, detail, actions, reconnect, floods.

No broker here: a fake feed hands batches to the app the way the real one does (from another
thread, through ``post_message``), a fake control port records every command, and the clock is
frozen. The real feed, control client and queue probe are tested on the broker elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from amqptool.errors import ConnectionFailedError
from amqptool.monitor.app import MonitorApp, MonitorOptions
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import FeedBatch, FeedStatus
from amqptool.monitor.queues import QueueDepth
from amqptool.monitor.screens import (
    ConfirmScreen,
    HelpScreen,
    RateLimitScreen,
    TaskDetailScreen,
)
from amqptool.monitor.store import TaskStore, record_of
from amqptool.monitor.widgets import GridTable
from tests.unit.test_monitor_state import ev, heartbeat, lifecycle

NOW = 1_795_255_200.0
BROKER = "amqp://guest:****@rabbit.example:5672/prod"
SIZE = (130, 36)


def demo_events() -> list[dict[str, Any]]:
    """Two online workers, one gone quiet, and a mix of task states (fixed data)."""
    events: list[dict[str, Any]] = [
        heartbeat(host="alpha@node1", active=2, processed=130, ts=NOW - 1),
        heartbeat(host="beta@node2", active=0, processed=12, ts=NOW - 1, loadavg=[1.5, 1.2, 0.9]),
        heartbeat(host="gamma@node3", active=0, processed=4, ts=NOW - 30),
    ]
    for i in range(12):
        uuid = f"5f0c{i:04d}-7d3a-4b6e-9c1d-00000000{i:04d}"
        t = NOW - 60 + 4 * i
        host = "alpha@node1" if i % 2 else "beta@node2"
        received, started, end = lifecycle(uuid, fail=i % 5 == 3, t=t, clock=10 * i + 1)
        for e in (received, started, end):
            e["hostname"] = host
        received["name"] = "reports.monthly" if i % 4 == 0 else "app.add"
        received["args"] = f"({i}, {i + 1})"
        events.append(received)
        if i < 10:
            events.append(started)
        if i < 9:
            events.append(end)
    return events


def load(state: MonitorState) -> MonitorState:
    # Apply each event at its own "arrival" time so the throughput buckets are fixed data.
    for event in demo_events():
        state.apply(event, float(event["timestamp"]) + 0.05)
    return state


class FakeControl:
    """Records every command; answers with ``replies`` or raises ``error``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], Any]] = []
        self.replies: dict[str, Any] | Callable[[str], dict[str, Any]] = {}
        self.error: Exception | None = None
        self.thread_names: list[str] = []

    def call(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        self.thread_names.append(threading.current_thread().name)
        self.calls.append(("call", method, dict(arguments or {}), destination))
        if self.error is not None:
            raise self.error
        return self.replies(method) if callable(self.replies) else self.replies

    def cast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
    ) -> None:
        self.calls.append(("cast", method, dict(arguments or {}), destination))
        if self.error is not None:
            raise self.error


class FakeFeed:
    """Stands in for EventFeed: the test pushes batches and statuses through it."""

    def __init__(self) -> None:
        self.on_batch: Callable[[FeedBatch], None] | None = None
        self.on_status: Callable[[FeedStatus], None] | None = None
        self.ready = threading.Event()
        self.stopped = threading.Event()

    def factory(
        self, on_batch: Callable[[FeedBatch], None], on_status: Callable[[FeedStatus], None]
    ) -> FakeFeed:
        self.on_batch, self.on_status = on_batch, on_status
        return self

    def run(self) -> None:
        self.ready.set()
        self.stopped.wait(30)

    def stop(self) -> None:
        self.stopped.set()

    def push(self, events: list[dict[str, Any]], malformed: int = 0) -> None:
        assert self.on_batch is not None
        self.on_batch(FeedBatch(events=events, malformed=malformed, messages=len(events)))

    def status(self, state: str, detail: str = "", attempt: int = 0) -> None:
        assert self.on_status is not None
        self.on_status(FeedStatus(state, detail, NOW, attempt))


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test in its own event loop (no asyncio plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(
    *,
    state: MonitorState | None = None,
    control: FakeControl | None = None,
    feed: FakeFeed | None = None,
    store: TaskStore | None = None,
    **options: Any,
) -> MonitorApp:
    return MonitorApp(
        load(MonitorState()) if state is None else state,
        options=MonitorOptions(broker=BROKER, tz=UTC, **options),
        feed_factory=feed.factory if feed is not None else None,
        control=control,
        store=store,
        clock=lambda: NOW,
    )


def screen_text(app: MonitorApp) -> str:
    """Every character on screen (what a user reads), as plain text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def tasks(app: MonitorApp) -> GridTable:
    return app.tasks_table


# --------------------------------------------------------------------------- navigation


@sync
async def test_the_main_screen_shows_header_workers_and_newest_tasks_first() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert BROKER in text and "sekrit" not in text
        assert "workers 2 online / 1 offline" in text
        assert "SUCCESS 7" in text and "FAILURE 2" in text
        assert [w.hostname for w in app.workers_table.items] == [
            "alpha@node1",
            "beta@node2",
            "gamma@node3",
        ]
        assert tasks(app).cursor_key == "5f0c0011-7d3a-4b6e-9c1d-000000000011"
        assert len(tasks(app).items) == 12


@sync
async def test_keys_move_the_cursor_and_switch_tables() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        table = tasks(app)
        assert app.focused is table
        await pilot.press("down", "down", "j")
        assert table.cursor == 3
        await pilot.press("k", "end")
        assert table.cursor == 11
        await pilot.press("home")
        assert table.cursor == 0
        await pilot.press("w")
        assert app.focused is app.workers_table
        await pilot.press("down")
        assert app.selected_worker() == "beta@node2"
        await pilot.press("t")
        assert app.focused is table


@sync
async def test_the_cursor_stays_on_its_task_while_new_tasks_arrive() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down")
        selected = tasks(app).cursor_key
        feed.push(lifecycle("brand-new", clock=9000, t=NOW))
        await pilot.pause(0.4)  # one refresh tick (4 Hz)
        assert tasks(app).items[0].uuid == "brand-new"
        assert tasks(app).cursor_key == selected


# --------------------------------------------------------------------------- sort and filter


@sync
async def test_sort_keys_and_header_clicks_sort_the_tasks() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")  # uuid, descending
        await pilot.pause()
        uuids = [t.uuid for t in tasks(app).items]
        assert uuids == sorted(uuids, reverse=True)
        await pilot.press("S")  # reversed
        await pilot.pause()
        assert [t.uuid for t in tasks(app).items] == sorted(uuids)
        name_x = 36 + 1 + 2  # inside the "Name" header cell
        await pilot.click("#tasks", offset=(name_x, 0))
        await pilot.pause()
        assert (app.sort.column, app.sort.descending) == ("name", True)
        names = [t.name for t in tasks(app).items]
        assert names == sorted(names, reverse=True)
        await pilot.click("#tasks", offset=(name_x, 0))  # again: flips
        await pilot.pause()
        assert (app.sort.column, app.sort.descending) == ("name", False)
        assert "Name ↑" in screen_text(app)


@sync
async def test_filter_by_state_name_worker_and_text_then_clear() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"state:FAILURE", "enter")
        await pilot.pause()
        assert {t.state for t in tasks(app).items} == {"FAILURE"}
        assert len(tasks(app).items) == 2
        assert app.focused is tasks(app)
        assert "2 task(s) match 'state:FAILURE'" in screen_text(app)
        await pilot.press("slash", "ctrl+u", *"name:mon worker:b", "enter")
        await pilot.pause()
        assert {(t.name, t.worker) for t in tasks(app).items} == {("reports.monthly", "beta@node2")}
        await pilot.press("slash", "ctrl+u", *"(7,", "enter")
        await pilot.pause()
        assert [t.args for t in tasks(app).items] == ["(7, 8)"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(tasks(app).items) == 12


@sync
async def test_filter_text_with_brackets_is_shown_as_typed() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"[b]x", "enter")
        await pilot.pause()
        assert "0 task(s) match '[b]x'" in screen_text(app)


# --------------------------------------------------------------------------- detail and help


@sync
async def test_enter_opens_the_detail_of_a_failed_task_and_escape_returns() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"state:FAILURE", "enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TaskDetailScreen)
        text = screen_text(app)
        for expected in (
            "ValueError('boom')",
            "traceback",
            "time in queue",
            "task-received",
            "task-failed",
            "beta@node2",
        ):
            assert expected in text, expected
        await pilot.press("s")  # main-screen keys do nothing here
        assert app.sort.column is None
        await pilot.press("escape")
        assert not isinstance(app.screen, TaskDetailScreen)


@sync
async def test_the_detail_shows_custom_event_fields_as_they_came() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("odd", t=NOW)[:2], NOW)
    state.apply(ev("task-progress", uuid="odd", clock=900, **{"[b]step": "[i]3/10"}), NOW)
    app = make_app(state=state)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "PROGRESS" in text and "[b]step" in text and "[i]3/10" in text


@sync
async def test_help_lists_every_key() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key, what in (("x", "Revoke"), ("K", "Shutdown worker"), ("/", "Filter")):
            assert f"{key} " in text and what in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


# --------------------------------------------------------------------------- actions


@sync
async def test_revoke_asks_first_then_sends_and_shows_the_replies() -> None:
    control = FakeControl()
    control.replies = {"alpha@node1": {"ok": "tasks 1 flagged as revoked"}}
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        uuid = tasks(app).cursor_key
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert control.calls == []
        await pilot.press("x", "y")
        await settle(pilot)
        assert control.calls == [("call", "revoke", {"task_id": uuid}, None)]
        assert control.thread_names[0] != threading.main_thread().name  # off the UI thread
        outcome = app.outcomes[-1]
        assert outcome.severity == "information"
        assert "alpha@node1: tasks 1 flagged as revoked" in outcome.message


@sync
async def test_terminate_sends_revoke_with_terminate_and_signal() -> None:
    control = FakeControl()
    control.replies = {"beta@node2": {"ok": "terminated"}}
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        uuid = tasks(app).cursor_key
        await pilot.press("X", "y")
        await settle(pilot)
        assert control.calls == [
            ("call", "revoke", {"task_id": uuid, "terminate": True, "signal": "SIGTERM"}, None)
        ]


@sync
async def test_revoke_from_the_detail_screen_targets_that_task() -> None:
    control = FakeControl()
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "enter")
        assert isinstance(app.screen, TaskDetailScreen)
        uuid = app.screen.uuid
        await pilot.press("x", "y")
        await settle(pilot)
        assert control.calls[0][2] == {"task_id": uuid}


@sync
async def test_rate_limit_for_the_selected_tasks_type() -> None:
    control = FakeControl()
    control.replies = {
        "alpha@node1": {"ok": "new rate limit set successfully"},
        "beta@node2": {"error": "unknown task"},
    }
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        name = tasks(app).cursor_item.name
        await pilot.press("l")
        assert isinstance(app.screen, RateLimitScreen)
        await pilot.press(*"fast", "enter")  # not a rate: refused in place
        assert isinstance(app.screen, RateLimitScreen)
        assert control.calls == []
        await pilot.press("ctrl+u", *"10/m", "enter")
        await settle(pilot)
        assert control.calls == [
            ("call", "rate_limit", {"task_name": name, "rate_limit": "10/m"}, None)
        ]
        outcome = app.outcomes[-1]
        assert outcome.severity == "warning"  # one node refused
        assert "beta@node2: error: unknown task" in outcome.message


@sync
async def test_ping_and_shutdown_the_selected_worker() -> None:
    control = FakeControl()
    control.replies = {"beta@node2": {"ok": "pong"}}
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w", "down", "p")
        await settle(pilot)
        assert control.calls[-1] == ("call", "ping", {}, ["beta@node2"])
        assert app.outcomes[-1].message == "ping beta@node2\nbeta@node2: pong"
        await pilot.press("K")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert control.calls[-1] == ("cast", "shutdown", {}, ["beta@node2"])
        assert app.outcomes[-1].message == "shutdown beta@node2: sent"


@pytest.mark.parametrize(
    ("error", "replies", "severity", "text"),
    [
        (
            ConnectionFailedError("cannot connect to the broker: [Errno 111] refused"),
            {},
            "error",
            "[Errno 111] refused",
        ),
        (RuntimeError("client bug"), {}, "error", "RuntimeError: client bug"),
        (None, {}, "warning", "no reply from alpha@node1 within 1s"),
        (None, {"alpha@node1": {"error": "boom"}}, "error", "alpha@node1: error: boom"),
        (None, {"alpha@node1": ["odd", "shape"]}, "information", "['odd', 'shape']"),
    ],
)
@sync
async def test_a_failed_or_unanswered_action_is_a_notification_not_a_crash(
    error: Exception | None, replies: dict[str, Any], severity: str, text: str
) -> None:
    control = FakeControl()
    control.error, control.replies = error, replies
    app = make_app(control=control)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("w", "p")
        await settle(pilot)
        outcome = app.outcomes[-1]
        assert (outcome.severity, text in outcome.message) == (severity, True)
        await pilot.pause()
        assert text in screen_text(app)  # the toast shows the text as it is (no markup)
        # the screen keeps working
        await pilot.press("t", "down")
        assert tasks(app).cursor == 1 and app.is_running


@sync
async def test_actions_without_a_selection_or_a_control_port_just_warn() -> None:
    app = make_app(state=MonitorState())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x", "l", "p", "K", "d")
        await pilot.pause()
        assert app.outcomes == [] and app.is_running
    app = make_app(control=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w", "p")
        await pilot.pause()
        assert app.is_running


# --------------------------------------------------------------------------- feed and reconnect


@sync
async def test_the_header_follows_the_connection_and_keeps_the_state_across_a_reconnect() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(feed.ready.wait, 5)
        assert "connecting" in screen_text(app)
        feed.status("connected", BROKER)
        await pilot.pause()
        assert "● connected" in screen_text(app)
        feed.status("disconnected", "connection to the broker lost: stream lost", attempt=1)
        await pilot.pause()
        text = screen_text(app)
        assert "✖ disconnected (retry 1): connection to the broker lost" in text
        assert len(tasks(app).items) == 12  # the state is kept
        feed.status("connecting", BROKER, attempt=1)
        feed.status("connected", BROKER)
        await pilot.pause()
        assert "● connected" in screen_text(app)
        assert len(tasks(app).items) == 12
    assert feed.stopped.is_set()  # the app stops its feed on exit


@sync
async def test_batches_from_the_feed_thread_update_the_views_at_a_capped_rate() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed, state=MonitorState())
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(feed.ready.wait, 5)
        await asyncio.to_thread(feed.push, [heartbeat(host="new@h")], 2)
        for _ in range(100):  # the next capped refresh, however busy the machine is
            await pilot.pause(0.1)
            if app.workers_table.items:
                break
        assert [w.hostname for w in app.workers_table.items] == ["new@h"]
        assert app.state.malformed == 2
        assert "malformed 2" in screen_text(app)


@sync
async def test_a_key_press_is_handled_during_a_flood_of_events() -> None:
    feed = FakeFeed()
    app = make_app(feed=feed, state=MonitorState())
    events: list[dict[str, Any]] = []
    for n in range(20_000):
        events.extend(lifecycle(f"flood-{n}", clock=3 * n + 1, t=NOW))
    stop = threading.Event()

    def flood() -> None:
        # 20 000 events/s for 3 s: 2 000 every 100 ms, the way the real feed hands them over
        for i in range(0, len(events), 2000):
            if stop.is_set():
                return
            feed.push(events[i : i + 2000])
            stop.wait(0.1)

    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(feed.ready.wait, 5)
        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        try:
            await pilot.pause(1.0)
            # how fast is measured by bench/ (bench_monitor), never asserted here
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await asyncio.to_thread(flooder.join, 10)
        finally:
            stop.set()
            flooder.join(5)
        await pilot.pause(0.5)
        assert app.state.event_count == len(events)
        assert len(app.state.tasks) == 10_000  # bounded while flooded
        assert app.state.evicted == 10_000


# --------------------------------------------------------------------------- queues and store


@sync
async def test_the_queue_panel_shows_ready_and_consumers_and_says_unacked_is_unknown() -> None:
    control = FakeControl()
    control.replies = {"alpha@node1": [{"name": "celery"}, {"name": "reports"}]}

    class Probe:
        def __init__(self) -> None:
            self.asked: list[list[str]] = []

        def probe(self, names: list[str]) -> list[QueueDepth]:
            self.asked.append(names)
            return [QueueDepth(n, 5, 1) for n in names]

        def close(self) -> None:
            pass

    probe = Probe()
    app = MonitorApp(
        load(MonitorState()),
        options=MonitorOptions(broker=BROKER, tz=UTC, queue_interval=0.1),
        control=control,
        queue_probe_factory=lambda: probe,
        clock=lambda: NOW,
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        queues = app.query_one("#queues", GridTable)
        assert [q.name for q in queues.items] == ["celery", "reports"]
        assert control.calls[0][1] == "active_queues"
        text = screen_text(app)
        assert "unacked: n/a (needs the management API)" in text
        assert "celery" in text


@sync
async def test_the_state_file_is_saved_and_searched_by_the_filter(tmp_path: Path) -> None:
    path = tmp_path / "monitor.sqlite"
    old = MonitorState()
    old.apply_many(lifecycle("evicted-long-ago", fail=True, t=NOW - 9000), NOW - 9000)
    with TaskStore(path) as store:
        store.save(record_of(t) for t in old.tasks.values())
    with TaskStore(path) as store:
        state = MonitorState(track_changes=True)
        load(state)
        app = make_app(state=state, store=store, store_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("slash", *"state:FAILURE", "enter")
            await settle(pilot)
            shown = [t.uuid for t in tasks(app).items]
            assert "evicted-long-ago" in shown and len(shown) == 3
            assert "(1 from --state)" in screen_text(app)
            await pilot.pause(0.3)
            await settle(pilot)
        assert store.count() == 13  # the 12 in memory were saved beside the old one
