"""A memory alarm on the second node (the broker blocks publishers): every tool ends by its own
timeout with "the broker is blocking publishers (<reason>)", Ctrl-C works, and a worker keeps
its results and publishes them once the alarm clears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.brokers import SecondBroker
from tests.harness import ROOT, wait_until
from tests.load import record_figures
from tests.worker_support import worker_and_client

SLACK = 5.0  # a hang guard only: the measured figures go to the reliability summary
TOOLS = {
    "call": (["call", "--wait", "--timeout", "5", "peer.add", "1", "2"], 5.0),
    "shell": (["shell", "--timeout", "5", "basic.publish", "hello", "", "nowhere"], 5.0),
    "control": (["control", "ping"], 1.0),
    "monitor": (["monitor", "--dump", "--timeout", "5"], 5.0),
}


def alarms(node: SecondBroker) -> str:
    return node.ctl("eval", "rabbit_alarm:get_alarms().")


@pytest.fixture
def memory_alarm(broker_b: SecondBroker) -> Iterator[SecondBroker]:
    broker_b.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        wait_until(lambda: "memory" in alarms(broker_b), 30, message="the memory alarm")
        yield broker_b
    finally:
        broker_b.ctl("set_vm_memory_high_watermark", "0.4")
        wait_until(lambda: "memory" not in alarms(broker_b), 30, message="the alarm to clear")


def tool_env(url: str) -> dict[str, str]:
    env = dict(os.environ, AMQP_URL=url, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CELERY_BROKER_URL", None)
    return env


def test_every_tool_ends_by_its_timeout_naming_the_block_and_ctrl_c_works(
    memory_alarm: SecondBroker, b_vhost_url: str
) -> None:
    env = tool_env(b_vhost_url)
    figures: dict[str, float] = {}
    for name, (argv, own_timeout) in TOOLS.items():
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "amqptool", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=own_timeout + SLACK,
            check=False,
        )
        figures[f"{name}_over_timeout_s"] = round(time.monotonic() - started - own_timeout, 2)
        assert proc.returncode == 69, (name, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, (name, proc.stderr)
        assert lines[0].startswith("error: the broker is blocking publishers (low on memory)")
        if name in ("call", "shell", "control"):  # something was handed to the broker
            assert "may or may not have gone through" in lines[0]
    for name in ("call", "monitor"):
        argv = [*TOOLS[name][0][:-3], "--timeout", "60", *TOOLS[name][0][-3:]]
        argv = ["monitor", "--dump", "--timeout", "60"] if name == "monitor" else argv
        proc2 = subprocess.Popen(
            [sys.executable, "-m", "amqptool", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(2)  # a drill: let it reach the blocked wait (no condition to observe)
        sent = time.monotonic()
        proc2.send_signal(signal.SIGINT)
        code = proc2.wait(SLACK)
        figures[f"{name}_sigint_exit_s"] = round(time.monotonic() - sent, 2)
        assert code == 130
    record_figures("publish_blocked_tools", figures)


def blocked_connections(node: SecondBroker) -> list[str]:
    out = node.ctl("list_connections", "name", "state", "--no-table-headers")
    return [line for line in out.splitlines() if line.rstrip().endswith("blocked")]


def test_worker_keeps_its_results_while_blocked_and_sends_them_after(
    broker_b: SecondBroker, b_vhost_url: str
) -> None:
    with worker_and_client(b_vhost_url, concurrency=4) as (worker, client, queue):
        results = client.send_many([("peer.sleep", [6], {}, {"queue": queue}) for _ in range(4)])
        consumer = worker.consumer
        wait_until(lambda: consumer.executing == 4, 30, message="the four tasks to start")
        generation = consumer.link.generation
        broker_b.ctl("set_vm_memory_high_watermark", "0.0000001")
        try:
            wait_until(lambda: "memory" in alarms(broker_b), 30, message="the memory alarm")
            assert consumer.executing == 4, "the tasks ended before the alarm: rerun"
            # They finish while the alarm lasts; their results wait in the worker.
            wait_until(lambda: consumer.executing == 0, 30, message="the tasks to finish")
            wait_until(lambda: blocked_connections(broker_b), 30, message="a blocked worker")
            assert all(r.state == "PENDING" for r in results)
        finally:
            broker_b.ctl("set_vm_memory_high_watermark", "0.4")
            wait_until(lambda: "memory" not in alarms(broker_b), 30, message="the alarm to clear")
        assert [r.get(timeout=60) for r in results] == [6, 6, 6, 6]
        assert consumer.link.generation == generation  # never reconnected
