"""The worker screen driven by Pilot: its sections from control replies shaped like a Celery
worker's, a section that does not answer, refresh on demand and every action (confirmed where
destructive); and an SVG snapshot."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from amqptool.monitor.screens import ConfirmScreen
from amqptool.monitor.workerinfo import parse_registered
from amqptool.monitor.workerscreen import PromptScreen, WorkerDetailScreen
from tests.ui.test_monitor_app import FakeControl, make_app, screen_text, settle, sync

NODE = "alpha@node1"
SIZE = (130, 48)
REPLIES: dict[str, Any] = {
    "stats": {
        "total": {"app.add": 120, "reports.monthly": 10},
        "pid": 4242,
        "clock": "981",
        "uptime": 3600,
        "pool": {
            "implementation": "celery.concurrency.prefork:TaskPool",
            "max-concurrency": 4,
            "processes": [101, 102, 103, 104],
            "max-tasks-per-child": "N/A",
            "timeouts": [0, 0],
        },
        "broker": {"hostname": "rabbit.example", "port": 5672, "virtual_host": "prod"},
        "prefetch_count": 16,
        "rusage": {"utime": 12.5, "stime": 1.25, "maxrss": 81234},
    },
    "active_queues": [
        {
            "name": "celery",
            "exchange": {"name": "celery", "type": "direct"},
            "routing_key": "celery",
        },
        {"name": "reports", "exchange": {"name": "reports"}, "routing_key": "reports"},
    ],
    "registered": [
        "app.add [rate_limit=10/m time_limit=None soft_time_limit=None]",
        "reports.monthly [rate_limit=None time_limit=300 soft_time_limit=240]",
    ],
    "conf": {
        "broker_url": "amqp://guest:********@rabbit.example//",
        "worker_prefetch_multiplier": 4,
    },
    "report": {
        "ok": "software -> celery:5.7.0 (opalescent) kombu:5.5 py:3.11.7\nplatform -> Linux"
    },
}


def answering(control: FakeControl, silent: tuple[str, ...] = ()) -> FakeControl:
    def reply(method: str) -> dict[str, Any]:
        if method in silent:
            return {}
        if method in REPLIES:
            return {NODE: REPLIES[method]}
        return {NODE: {"ok": f"{method} done"}}

    control.replies = reply
    return control


async def open_worker(pilot: Pilot[Any]) -> WorkerDetailScreen:
    app = pilot.app
    await pilot.press("w")
    app.workers_table.cursor = 0  # type: ignore[attr-defined]  # a MonitorApp
    await pilot.press("enter")
    screen = app.screen
    assert isinstance(screen, WorkerDetailScreen) and screen.node == NODE
    await settle(pilot)
    return screen


def test_registered_lines_give_rate_and_time_limits() -> None:
    parsed = parse_registered(REPLIES["registered"] + ["plain.task", 42])
    assert [(t.name, t.rate_limit, t.time_limit, t.soft_time_limit) for t in parsed] == [
        ("app.add", "10/m", "-", "-"),
        ("reports.monthly", "-", "300", "240"),
        ("plain.task", "-", "-", "-"),
        ("42", "-", "-", "-"),
    ]


@sync
async def test_enter_on_a_worker_shows_pool_queues_tasks_stats_config_and_system() -> None:
    control = answering(FakeControl())
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_worker(pilot)
        assert screen.info is not None and not screen.info.errors
        text = screen_text(app)
        for expected in (
            "celery.concurrency.prefork:TaskPool",
            "101 102 103 104",
            "prefetch",
            "16",
            "reports",
            "app.add",
            "10/m",
            "300",
            "worker_prefetch_multiplier",
            "software -> celery:5.7.0",
        ):
            assert expected in text, expected
        asked = [(c[1], c[3]) for c in control.calls]
        assert asked == [
            (m, [NODE]) for m in ("stats", "active_queues", "registered", "conf", "report")
        ]
        assert control.calls[2][2] == {
            "taskinfoitems": ["rate_limit", "time_limit", "soft_time_limit"]
        }
        await pilot.press("r")
        await settle(pilot)
        assert screen.fetches == 2


@sync
async def test_a_section_that_does_not_answer_says_so() -> None:
    app = make_app(control=answering(FakeControl(), silent=("conf",)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_worker(pilot)
        assert screen.info is not None and set(screen.info.errors) == {"config"}
        text = screen_text(app)
        assert "no answer: conf: no reply from alpha@node1" in text
        assert "1 section(s) did not answer" in text


@sync
async def test_the_worker_actions_confirm_the_destructive_ones() -> None:
    control = answering(FakeControl())
    app = make_app(control=control)
    async with app.run_test(size=SIZE) as pilot:
        await open_worker(pilot)

        def sent(method: str) -> list[dict[str, Any]]:
            return [c[2] for c in control.calls if c[1] == method and c[3] == [NODE]]

        await pilot.press("plus")
        await settle(pilot)
        assert sent("pool_grow") == [{"n": 1}]
        await pilot.press("minus")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert sent("pool_shrink") == [{"n": 1}]
        await pilot.press("a")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"urgent", "enter")
        await settle(pilot)
        assert sent("add_consumer") == [{"queue": "urgent"}]
        await pilot.press("c", *"reports", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert sent("cancel_consumer") == []
        await pilot.press("c", *"reports", "enter", "y")
        await settle(pilot)
        assert sent("cancel_consumer") == [{"queue": "reports"}]
        await pilot.press("l", *"app.add 5/s", "enter")
        await settle(pilot)
        assert sent("rate_limit") == [{"task_name": "app.add", "rate_limit": "5/s"}]
        await pilot.press("t", *"app.add 20 10", "enter")
        assert isinstance(app.screen, PromptScreen)  # soft above hard: refused, still asking
        assert "SOFT <= HARD" in screen_text(app)
        await pilot.press(*["backspace"] * 5, *"10 20", "enter", "y")
        await settle(pilot)
        assert sent("time_limit") == [{"task_name": "app.add", "soft": 10.0, "hard": 20.0}]
        assert isinstance(app.screen, WorkerDetailScreen)
        # each answered action asked the worker again, so the screen shows its effect
        assert len(sent("stats")) >= 1 + 6


def test_worker_screen_snapshot(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_worker(pilot)

    app = make_app(control=answering(FakeControl()))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
