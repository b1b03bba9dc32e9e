"""SVG snapshots of the monitor's screens (pytest-textual-snapshot), frozen clock, fixed data.

Update after a deliberate change with ``pytest tests/ui/test_monitor_snapshots.py
--snapshot-update`` and review the SVGs under ``tests/ui/__snapshots__/``.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from amqptool.monitor.feed import FeedStatus
from amqptool.monitor.messages import FeedChanged, QueuesUpdated
from amqptool.monitor.queues import QueueDepth
from tests.ui.test_monitor_app import NOW, make_app

SIZE = (130, 36)


async def connected_with_queues(pilot: Pilot[Any]) -> None:
    app = pilot.app
    app.post_message(FeedChanged(FeedStatus("connected", "amqp://…", NOW)))
    app.post_message(
        QueuesUpdated(
            [
                QueueDepth("celery", 42, 2),
                QueueDepth("reports", 0, 1),
                QueueDepth("gone", error="not found"),
            ]
        )
    )
    await pilot.pause()


def test_main_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=connected_with_queues)


def test_main_screen_filtered_and_sorted_snapshot(snap_compare: Any) -> None:
    async def filter_and_sort(pilot: Pilot[Any]) -> None:
        await connected_with_queues(pilot)
        await pilot.press("slash", *"app.add", "enter", "s", "s")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=filter_and_sort)


def test_failed_task_detail_snapshot(snap_compare: Any) -> None:
    async def open_failed(pilot: Pilot[Any]) -> None:
        await pilot.press("slash", *"state:FAILURE", "enter", "enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_failed)


def test_help_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, press=["question_mark"])


def test_disconnected_header_snapshot(snap_compare: Any) -> None:
    async def drop(pilot: Pilot[Any]) -> None:
        status = FeedStatus("disconnected", "connection to the broker lost: stream lost", NOW, 3)
        pilot.app.post_message(FeedChanged(status))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(100, 24), run_before=drop)
