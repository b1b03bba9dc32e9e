"""Celery's own tools see and command our worker: events.State, inspect, control, status."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import ROOT, unique, wait_until
from tests.worker_support import Collector, close_celery, in_process_worker, publish_task
from worker.runtime.link import MailboxInUse

pytestmark = pytest.mark.celery


@pytest.fixture
def app(broker_url: str) -> Iterator[Any]:
    from celery import Celery

    client = Celery("client", broker=broker_url, backend="rpc://")
    yield client
    close_celery(client)


def feed(state: Any, events: list[dict[str, Any]]) -> None:
    for event in events:
        state.event(dict(event, local_received=time.time()))


def test_celerys_event_state_sees_our_worker_and_its_tasks(broker_url: str) -> None:
    from celery.events.state import State

    state = State()
    with Collector(broker_url, bind=("celeryev", "#")) as ev:
        with in_process_worker(broker_url, events=True) as w, Collector(broker_url) as replies:
            ok = publish_task(
                broker_url, w.config.queues[0], "peer.add", 2, 2, reply_to=replies.name
            )
            bad = publish_task(broker_url, w.config.queues[0], "peer.fail", "x")
            replies.wait_result(ok.id, "SUCCESS")

            def seen() -> bool:
                feed(state, ev.events())
                ev.messages.clear()
                tasks = state.tasks
                return (
                    ok.id in tasks
                    and tasks[ok.id].state == "SUCCESS"
                    and (bad.id in tasks and tasks[bad.id].state == "FAILURE")
                )

            wait_until(seen, message="task events in Celery's State")
            node = state.workers[w.nodename]
            assert node.alive and node.freq == 2.0 and node.sw_ident
            task = state.tasks[ok.id]
            assert (task.name, task.args, task.result) == ("peer.add", "(2, 2)", "4")
            assert task.worker.hostname == w.nodename and task.runtime is not None
            assert "ValueError('x')" in state.tasks[bad.id].exception
        wait_until(
            lambda: (feed(state, ev.events()), ev.messages.clear(), not node.alive)[-1],
            message="worker-offline",
        )


def test_celery_inspect_ping_from_the_command_line_gets_pong(
    broker_url: str, cli_env: dict[str, str]
) -> None:
    with in_process_worker(broker_url) as w:
        proc = subprocess.run(
            [sys.executable, "-m", "celery", "-b", broker_url, "inspect", "ping", "-d", w.nodename],
            capture_output=True,
            text=True,
            env=cli_env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert "pong" in proc.stdout and w.nodename in proc.stdout


def test_control_is_answered_while_every_pool_slot_is_busy(broker_url: str, app: Any) -> None:
    with in_process_worker(broker_url, pool="solo") as w, Collector(broker_url) as replies:
        q = w.config.queues[0]
        busy = publish_task(broker_url, q, "peer.sleep", 2, reply_to=replies.name)
        waiting = publish_task(broker_url, q, "peer.add", 1, 1, reply_to=replies.name)
        inspect = app.control.inspect(destination=[w.nodename], timeout=1)
        active = wait_until(lambda: (inspect.active() or {}).get(w.nodename))
        assert active[0]["id"] == busy.id and active[0]["acknowledged"] is True
        assert active[0]["worker_pid"] and active[0]["time_start"]
        assert [r["id"] for r in inspect.reserved()[w.nodename]] == [waiting.id]
        assert inspect.ping() == {w.nodename: {"ok": "pong"}}
        reply = app.control.revoke(waiting.id, destination=[w.nodename], reply=True, timeout=1)
        assert reply == [{w.nodename: {"ok": f"tasks {{'{waiting.id}'}} flagged as revoked"}}]
        assert replies.wait_result(waiting.id)["status"] == "REVOKED"
        assert replies.wait_result(busy.id)["status"] == "SUCCESS"


def test_inspect_and_control_replies_have_the_shapes_celery_and_flower_read(
    broker_url: str, app: Any
) -> None:
    with in_process_worker(broker_url, concurrency=3) as w:
        dest = [w.nodename]
        inspect = app.control.inspect(destination=dest, timeout=1)
        stats = inspect.stats()[w.nodename]
        assert {
            "total",
            "broker",
            "pool",
            "pid",
            "prefetch_count",
            "rusage",
            "clock",
            "uptime",
        } <= set(stats)
        assert stats["prefetch_count"] == 12 and stats["pool"]["max-concurrency"] == 3
        assert isinstance(stats["clock"], str) and "password" not in str(stats["broker"])
        assert "peer.add" in inspect.registered()[w.nodename]
        assert inspect.active_queues()[w.nodename][0]["name"] == w.config.queues[0]
        assert inspect.clock()[w.nodename]["clock"] > 0
        assert app.control.rate_limit("peer.add", "10/m", destination=dest, reply=True) == [
            {w.nodename: {"ok": "new rate limit set successfully"}}
        ]
        assert app.control.enable_events(destination=dest, reply=True) == [
            {w.nodename: {"ok": "task events enabled"}}
        ]
        assert app.control.disable_events(destination=dest, reply=True) == [
            {w.nodename: {"ok": "task events disabled"}}
        ]
        hello = app.control.broadcast(
            "hello",
            arguments={"from_node": "other@x", "revoked": ["r1"]},
            destination=dest,
            reply=True,
            timeout=1,
        )
        assert "r1" in hello[0][w.nodename]["revoked"]  # plus what mingle learned from peers
        assert app.control.broadcast("nonexistent", destination=dest, reply=True, timeout=1) == [
            {w.nodename: {"error": "KeyError('nonexistent')"}}
        ]


def test_the_heartbeat_command_sends_a_heartbeat_at_once(broker_url: str, app: Any) -> None:
    with (
        in_process_worker(broker_url, heartbeat_interval=60) as w,
        Collector(broker_url, bind=("celeryev", "worker.heartbeat")) as ev,
    ):
        app.control.heartbeat(destination=[w.nodename])
        beats = wait_until(ev.events, message="a worker-heartbeat")
    assert beats[0]["hostname"] == w.nodename and beats[0]["freq"] == 5


def test_the_shutdown_command_stops_the_worker_without_a_reply(broker_url: str, app: Any) -> None:
    with in_process_worker(broker_url) as w:
        replies = app.control.broadcast("shutdown", destination=[w.nodename], reply=True, timeout=1)
        assert replies == []
        assert w.join(10) and w.error is None and w.exit_code == 0


def test_a_second_worker_with_the_same_name_refuses_to_start(broker_url: str) -> None:
    name = f"{unique('twin')}@localhost"
    with (
        in_process_worker(broker_url, nodename=name),
        pytest.raises(MailboxInUse, match="already using this process mailbox"),
        in_process_worker(broker_url, nodename=name),
    ):
        pass


def test_requests_are_filtered_by_destination_and_pattern(broker_url: str, app: Any) -> None:
    with in_process_worker(broker_url) as w:
        prefix = w.nodename.split("-")[0]
        ping = app.control.inspect(timeout=1, pattern=f"{prefix}-*", matcher="glob").ping
        assert w.nodename in (ping() or {})
        regex = app.control.inspect(timeout=1, pattern=f"^{w.nodename}$", matcher="pcre")
        assert (regex.ping() or {}).get(w.nodename) == {"ok": "pong"}
        other = app.control.inspect(timeout=1, destination=["nobody@nowhere"])
        assert other.ping() is None
