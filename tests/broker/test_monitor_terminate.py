"""``X`` (terminate) on a task running in our threads pool: the worker says it cannot, and the
monitor shows that answer as an error (a real worker process, the real monitor app)."""

from __future__ import annotations

import asyncio
from typing import Any

from amqptool.monitor.main import build_app
from amqptool.monitor.screens import ConfirmScreen
from amqptool.settings import BrokerSettings
from tests.ui.test_monitor_app import sync
from tests.worker_support import WorkerProcess, publish_task


@sync
async def test_terminate_on_the_threads_pool_is_an_error_reply_shown_by_the_monitor(
    fresh_vhost_url: str,
) -> None:
    # A vhost of its own: terminate is a broadcast, and any other worker of the session's vhost
    # (a Celery peer kept for the session, say) would answer too and turn the outcome mixed.
    broker_url = fresh_vhost_url
    with WorkerProcess(broker_url, "-P", "threads", "-c", "2", "-E") as worker:
        app = build_app(BrokerSettings.from_url(broker_url, environ={}), queues=(worker.queue,))
        async with app.run_test(size=(130, 36)) as pilot:

            async def until(pred: Any, what: str, timeout: float = 20.0) -> None:
                deadline = asyncio.get_running_loop().time() + timeout
                while not pred():
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"timed out waiting for {what}")
                    await pilot.pause(0.1)

            await until(lambda: app.feed_status.connected, "the feed")
            msg = await asyncio.to_thread(publish_task, broker_url, worker.queue, "peer.sleep", 4.0)
            await until(
                lambda: msg.id in app.state.tasks and app.state.tasks[msg.id].state == "STARTED",
                "the task to start",
            )
            await until(lambda: any(t.uuid == msg.id for t in app.tasks_table.items), "the row")
            await pilot.press("t")
            app.tasks_table.cursor = next(
                i for i, t in enumerate(app.tasks_table.items) if t.uuid == msg.id
            )
            await pilot.press("X")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(lambda: app.outcomes, "the worker's reply")
            outcome = app.outcomes[-1]
            reply = outcome.replies[worker.nodename]
            assert "the threads pool cannot stop a running task" in reply["error"]
            assert outcome.severity == "error"
            shown = [n.message for n in app._notifications]  # the toasts on screen
            assert any("threads pool cannot stop" in m and worker.nodename in m for m in shown)
            # and the task did run on to its end, as the reply said
            await until(
                lambda: app.state.tasks[msg.id].state == "SUCCESS", "the task to finish", 15
            )
