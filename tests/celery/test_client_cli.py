"""``amqptool call`` in a subprocess: stdout is data, stderr one error line, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from amqptool.codec import tasks
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from tests import harness
from tests.harness import ROOT, CeleryPeer


def call(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amqptool", "call", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=90,
        check=False,
    )


@pytest.fixture
def channel(broker_url: str) -> Iterator[Channel]:
    with Connection(BrokerSettings.from_url(broker_url, environ={})).connect() as conn:
        yield conn.channel()


@pytest.mark.celery
def test_wait_prints_the_result_of_a_celery_task(
    cli_env: dict[str, str], celery_peer: CeleryPeer
) -> None:
    proc = call(cli_env, "peer.add", "2", "2", "--queue", celery_peer.queue, "--wait")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "4\n", "")


@pytest.mark.celery
def test_wait_json_prints_id_state_and_result_with_kwargs(
    cli_env: dict[str, str], celery_peer: CeleryPeer
) -> None:
    proc = call(
        cli_env,
        "peer.echo",
        "hello",
        "[1, 2]",
        "--kwargs",
        '{"n": 3}',
        "-Q",
        celery_peer.queue,
        "--timeout",
        "30",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"] == "SUCCESS" and uuid.UUID(out["id"])
    assert out["result"] == {"args": ["hello", [1, 2]], "kwargs": {"n": 3}}


@pytest.mark.celery
def test_a_failed_task_is_one_error_line_and_exit_1(
    cli_env: dict[str, str], celery_peer: CeleryPeer
) -> None:
    proc = call(cli_env, "peer.fail", "boom", "--queue", celery_peer.queue, "--wait")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: ValueError: boom"]


def test_without_wait_the_task_id_is_printed_and_the_message_queued(
    cli_env: dict[str, str], channel: Channel, unique_name: str
) -> None:
    proc = call(cli_env, "t.add", "1", "x", "--queue", unique_name, "--priority", "7")
    assert proc.returncode == 0, proc.stderr
    task_id = proc.stdout.strip()
    env = harness.wait_until(lambda: channel.get(unique_name, no_ack=True), message="the task")
    assert env is not None
    msg = tasks.decode_task(env)
    assert (msg.id, msg.task, msg.args, msg.priority) == (task_id, "t.add", [1, "x"], 7)
    channel.queue_delete(unique_name)
    channel.exchange_delete(unique_name)


def test_bad_kwargs_json_is_a_usage_error_with_exit_2(cli_env: dict[str, str]) -> None:
    proc = call(cli_env, "t.add", "--kwargs", "{not json")
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "--kwargs is not valid JSON" in proc.stderr
    proc = call(cli_env, "t.add", "--countdown", "1", "--eta", "2030-01-01T00:00:00")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_no_result_within_the_timeout_exits_69(
    cli_env: dict[str, str], channel: Channel, unique_name: str
) -> None:
    proc = call(cli_env, "t.never", "--queue", unique_name, "--timeout", "0.3")
    assert proc.returncode == 69
    assert len(proc.stderr.splitlines()) == 1 and "did not finish within 0.3s" in proc.stderr
    channel.queue_delete(unique_name)
    channel.exchange_delete(unique_name)


def test_an_unreachable_broker_exits_70_without_the_password(cli_env: dict[str, str]) -> None:
    proc = call(cli_env, "-b", "amqp://guest:s3cret@127.0.0.1:1//", "t.add", "1")
    assert proc.returncode == 70
    assert len(proc.stderr.splitlines()) == 1 and "s3cret" not in proc.stderr


def test_help_documents_the_arguments_and_exit_codes(cli_env: dict[str, str]) -> None:
    proc = call(cli_env, "--help")
    assert proc.returncode == 0
    assert "69 no result within --timeout" in proc.stdout and "--kwargs JSON" in proc.stdout
