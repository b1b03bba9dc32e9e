"""Bad input costs one message, never the worker: a clear log line, a dead letter, a FAILURE."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.tasks import TaskMessage, encode_task
from tests.harness import rabbitmqctl, unique, wait_until
from tests.worker_support import Collector, connect, in_process_worker, publish_task
from worker import Worker


@pytest.fixture(scope="module")
def queue(broker_vhost: str) -> Iterator[str]:
    """A task queue whose rejected messages a policy dead-letters to ``<queue>.dlx``."""
    name = unique("badq")
    policy = unique("dlx-policy")
    rabbitmqctl(
        "set_policy",
        "-p",
        broker_vhost,
        "--apply-to",
        "queues",
        policy,
        f"^{name}$",
        f'{{"dead-letter-exchange": "{name}.dlx"}}',
    )
    yield name
    rabbitmqctl("clear_policy", "-p", broker_vhost, policy, check=False)


@pytest.fixture(scope="module")
def worker(broker_url: str, queue: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, queues=[queue], events=True) as w:
        yield w


@pytest.fixture
def dead_letters(broker_url: str, queue: str, worker: Worker) -> Iterator[Collector]:
    with connect(broker_url) as conn:
        conn.channel().exchange_declare(f"{queue}.dlx", "fanout", auto_delete=False)
    with Collector(broker_url, bind=(f"{queue}.dlx", "")) as collector:
        yield collector


def v2(name: str, task_id: str, reply_to: str, queue: str, **headers: Any) -> Envelope:
    env = encode_task(TaskMessage(task=name, id=task_id, reply_to=reply_to), routing_key=queue)
    env.headers.update(headers)
    return env


def not_json(env: Envelope) -> None:
    env.body = b"{not json"


def pickled(env: Envelope) -> None:
    env.body = pickle.dumps(([1, 2], {}, {}))
    env.properties.content_type = "application/x-python-serialize"


def unknown_task(env: Envelope) -> None:
    env.headers["task"] = "nosuch.task"


def too_many_args(env: Envelope) -> None:
    env.body = b"[[1, 2, 3], {}, {}]"


def bad_eta(env: Envelope) -> None:
    env.headers["eta"] = "next tuesday"


CASES: dict[str, tuple[Callable[[Envelope], None], tuple[str, str], str]] = {
    "a body that is not JSON": (not_json, ("DecodeError", "kombu.exceptions"), "cannot decode"),
    "pickle, which is not accepted": (
        pickled,
        ("ContentDisallowed", "kombu.exceptions"),
        "is not accepted",
    ),
    "an unknown task": (unknown_task, ("NotRegistered", "celery.exceptions"), "unregistered"),
    "arguments that don't fit": (too_many_args, ("TypeError", "builtins"), "do not fit"),
    "an eta that is not a time": (bad_eta, ("ValueError", "builtins"), "not an ISO 8601 time"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_task_message_is_dead_lettered_with_a_failure_result_and_events(
    case: str,
    broker_url: str,
    queue: str,
    worker: Worker,
    dead_letters: Collector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mutate, (exc_type, exc_module), reason = CASES[case]
    task_id = unique("bad")
    with Collector(broker_url) as replies, Collector(broker_url, bind=("celeryev", "task.#")) as ev:
        env = v2("peer.add", task_id, replies.name, queue)
        mutate(env)

        def failed_and_rejected() -> list[dict[str, Any]] | None:
            mine = [e for e in ev.events() if e.get("uuid") == task_id]
            return mine if [e["type"] for e in mine] == ["task-failed", "task-rejected"] else None

        with caplog.at_level(logging.ERROR, logger="worker"), connect(broker_url) as conn:
            conn.channel().publish(env)
            failure = replies.wait_result(task_id)
            (dead,) = wait_until(dead_letters.poll, message="the dead letter")
            events = wait_until(failed_and_rejected, message="task-failed and task-rejected")
    assert failure["status"] == "FAILURE"
    assert (failure["result"]["exc_type"], failure["result"]["exc_module"]) == (
        exc_type,
        exc_module,
    )
    assert dead.headers["x-death"][0]["reason"] == "rejected"
    assert any(e.get("type") == "task-rejected" and e["requeue"] is False for e in events)
    lines = [r.getMessage() for r in caplog.records if task_id in r.getMessage()]
    assert len(lines) == 1 and reason in lines[0] and "\n" not in lines[0]
    # ... and the worker goes on.
    with Collector(broker_url) as replies:
        ok = publish_task(broker_url, queue, "peer.add", 1, 2, reply_to=replies.name)
        assert replies.wait_result(ok.id, "SUCCESS")["result"] == 3


def test_a_message_that_is_not_a_task_is_dead_lettered_without_a_result(
    broker_url: str, queue: str, worker: Worker, dead_letters: Collector
) -> None:
    props = Properties(content_type="application/json", content_encoding="utf-8")
    with connect(broker_url) as conn:
        conn.channel().publish(Envelope(b'{"hello": "world"}', props, routing_key=queue))
    (dead,) = wait_until(dead_letters.poll, message="the dead letter")
    assert dead.body == b'{"hello": "world"}'
    assert worker.consumer.state.total.get("hello") is None


def test_pickle_runs_when_the_worker_accepts_it(broker_url: str) -> None:
    with (
        in_process_worker(broker_url, accept_content=["json", "pickle"]) as w,
        Collector(broker_url) as replies,
    ):
        msg = TaskMessage(task="peer.add", args=[20, 22], reply_to=replies.name)
        env = encode_task(msg, serializer="pickle", routing_key=w.config.queues[0])
        with connect(broker_url) as conn:
            conn.channel().publish(env)
        assert replies.wait_result(msg.id, "SUCCESS")["result"] == 42
