"""The whole monitor on the real broker: real feed, control client and queue probe, real peers.

Also the shape of the house for the monitor: its core imports no UI toolkit and no pika, and the
command module stays light.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from amqptool.monitor.main import build_app
from amqptool.monitor.queues import QueueProbe, queues_from_replies
from amqptool.monitor.screens import ConfirmScreen
from amqptool.settings import BrokerSettings
from tests import harness
from tests.broker.test_monitor_feed import queue_rows, send_tasks, vhost_of
from tests.ui.test_monitor_app import screen_text, sync

SIZE = (130, 36)


def test_passive_declare_gives_ready_and_consumers_and_reports_missing_queues(
    broker_url: str, unique_name: str
) -> None:
    from amqptool.transport import Connection

    settings = BrokerSettings.from_url(broker_url)
    with Connection(settings) as conn:
        channel = conn.channel()
        channel.queue_declare(unique_name, durable=False, auto_delete=False)
        for _ in range(3):
            channel.publish(_plain(unique_name))
    probe = QueueProbe(settings)
    try:
        harness.wait_until(
            lambda: probe.probe([unique_name])[0].ready == 3, timeout=5, message="3 ready"
        )
        depths = probe.probe([f"{unique_name}-missing", unique_name])
        assert depths[0].error == "not found"
        assert (depths[1].ready, depths[1].consumers) == (3, 0)
        assert depths[1].cells == (unique_name, "3", "n/a", "0")
    finally:
        probe.close()
        with Connection(settings) as conn:
            conn.channel().queue_delete(unique_name)


def _plain(queue: str) -> Any:
    from amqptool.codec.envelope import Envelope, Properties

    return Envelope(b"x", Properties(content_type="text/plain"), exchange="", routing_key=queue)


def test_queue_names_come_from_active_queues_replies() -> None:
    replies = {
        "a@h": [{"name": "celery", "exchange": {"name": "celery"}}, {"name": "q2"}],
        "b@h": [{"name": "celery"}],
        "c@h": {"error": "not allowed"},
    }
    assert queues_from_replies(replies) == ["celery", "q2"]


@pytest.mark.celery
@sync
async def test_the_live_app_shows_a_real_celery_worker_its_queue_and_pings_it(
    broker_url: str, celery_peer: harness.CeleryPeer
) -> None:
    settings = BrokerSettings.from_url(broker_url)
    app = build_app(settings)
    app.options.queue_interval = 0.5
    vhost = vhost_of(broker_url)
    async with app.run_test(size=SIZE) as pilot:
        node = celery_peer.nodename

        async def until(pred: Any, what: str, timeout: float = 20.0) -> None:
            deadline = asyncio.get_running_loop().time() + timeout
            while not pred():
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                await pilot.pause(0.1)

        await until(lambda: app.feed_status.connected, "the feed to connect")
        event_queue = app.feed_status.queue
        await until(lambda: node in app.state.workers, "the peer's heartbeat")
        await asyncio.to_thread(send_tasks, broker_url, celery_peer.queue)
        await until(
            lambda: (
                sum(1 for t in app.state.tasks.values() if t.worker == node) >= 2
                and all(t.finished for t in app.state.tasks.values() if t.worker == node)
            ),
            "both tasks to finish",
        )
        await until(
            lambda: celery_peer.queue in [q.name for q in app.query_one("#queues").items],
            "the peer's queue from active_queues",
        )
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "● connected" in text and node[:15] in text
        assert "peer.add" in text and "peer.fail" in text

        # ping the peer through the real control client
        await pilot.press("w")
        app.workers_table.cursor = next(
            i for i, row in enumerate(app.workers_table.items) if row.hostname == node
        )
        await pilot.press("p")
        await until(lambda: app.outcomes, "the ping reply")
        assert app.outcomes[-1].replies == {node: {"ok": "pong"}}
        # revoking a finished task is answered by the worker, not a crash
        await pilot.press("t", "x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(lambda: len(app.outcomes) == 2, "the revoke reply")
        assert app.outcomes[-1].severity == "information"
        assert node in app.outcomes[-1].replies
    assert event_queue is not None
    assert event_queue not in queue_rows(vhost)  # the monitor left no litter


def test_the_monitor_core_imports_no_ui_toolkit_and_no_pika() -> None:
    code = (
        "import amqptool.monitor.cli, amqptool.monitor.store, amqptool.monitor.actions\n"
        "import amqptool.monitor.queues, amqptool.monitor.dump, amqptool.monitor.workerinfo\n"
        "import amqptool.monitor.core.state, amqptool.monitor.core.selectors\n"
        "import amqptool.monitor.core.model, amqptool.monitor.core.query\n"
        "import amqptool.monitor.core.formatting, amqptool.monitor.core.clean\n"
        "import amqptool.monitor.core.fields, amqptool.monitor.core.totals\n"
        "import amqptool.monitor.core.history\n"
    )
    loaded = harness.modules_loaded_by(code)
    assert not {"pika", "textual", "prompt_toolkit", "rich"} & loaded


def test_monitor_help_is_fast_and_documents_the_dump_contract(cli_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", "--help"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert proc.returncode == 0
    for text in ("--dump", "--json", "--count", "--timeout", "--max-tasks", "--state", "-Q"):
        assert text in proc.stdout
    assert "total run time" in proc.stdout and "69" in proc.stdout


@pytest.mark.celery
def test_the_monitors_actions_reach_our_worker(broker_url: str) -> None:
    from amqptool.monitor.actions import (
        BrokerControl,
        perform,
        ping_action,
        rate_limit_action,
        revoke_action,
        shutdown_action,
    )
    from worker import Worker

    ours = Worker(
        "tests.peers.amqptool_tasks",
        settings=broker_url,
        queues=[harness.unique("ourq")],
        nodename=f"{harness.unique('ours')}@localhost",
        pool="threads",
        concurrency=1,
        events=True,
    ).start()
    control = BrokerControl(BrokerSettings.from_url(broker_url))
    try:
        node = ours.nodename
        ping = perform(control, ping_action(node))
        assert (ping.severity, ping.replies) == ("information", {node: {"ok": "pong"}})
        limited = perform(control, rate_limit_action("peer.add", "10/m"))
        assert limited.replies[node] == {"ok": "new rate limit set successfully"}
        revoked = perform(control, revoke_action("no-such-task-id"))
        assert node in revoked.replies and revoked.severity == "information"
        down = perform(control, shutdown_action(node))
        assert down.message == f"shutdown {node}: sent"
        assert ours.join(30), "our worker did not shut down on the monitor's command"
    finally:
        ours.stop()
        ours.join(30)
