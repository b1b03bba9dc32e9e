"""The worker screen against a real worker process: its sections through the real control
client, and pool grow shown on the screen after the worker did it."""

from __future__ import annotations

import asyncio
from typing import Any

from amqptool.monitor.main import build_app
from amqptool.monitor.workerscreen import WorkerDetailScreen
from amqptool.settings import BrokerSettings
from tests.ui.test_monitor_app import sync
from tests.worker_support import WorkerProcess


@sync
async def test_the_worker_screen_reads_a_real_worker_and_grows_its_pool(
    fresh_vhost_url: str,
) -> None:
    with WorkerProcess(fresh_vhost_url, "-P", "threads", "-c", "2", "-E") as worker:
        app = build_app(BrokerSettings.from_url(fresh_vhost_url, environ={}))
        async with app.run_test(size=(130, 48)) as pilot:

            async def until(pred: Any, what: str, timeout: float = 20.0) -> None:
                deadline = asyncio.get_running_loop().time() + timeout
                while not pred():
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"timed out waiting for {what}")
                    await pilot.pause(0.1)

            await until(
                lambda: any(r.hostname == worker.nodename for r in app.workers_table.items),
                "the worker's heartbeat",
            )
            await pilot.press("w")
            app.workers_table.cursor = next(
                i for i, r in enumerate(app.workers_table.items) if r.hostname == worker.nodename
            )
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, WorkerDetailScreen)
            await until(lambda: screen.info is not None, "the worker's answers")
            info = screen.info
            assert info is not None
            assert not info.errors, info.errors
            pool = dict(info.pool)
            assert "ThreadPool" in pool["kind"] and pool["size"] == "2"
            assert worker.queue in info.queue_names
            assert "peer.add" in [t.name for t in info.registered]
            assert any(k == "broker_url" for k, _ in info.config)
            assert "amqptool-worker" in info.system
            await pilot.press("plus")
            await until(
                lambda: dict(screen.info.pool if screen.info else []).get("size") == "3",
                "the grown pool on screen",
            )
            assert app.outcomes[-1].replies == {worker.nodename: {"ok": "pool will grow"}}
