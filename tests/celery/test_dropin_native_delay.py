"""Celery's native delayed delivery: a countdown a Celery client sends to a quorum queue behind
a topic exchange goes through ``celery_delayed_N`` and comes back to our worker on time."""

from __future__ import annotations

from typing import Any

import kombu.entity

from tests.harness import rabbitmqctl
from tests.worker_support import celery_client_for, in_process_worker
from worker.policy.queues import QueueSpec

Exchange: Any = kombu.entity.Exchange  # kombu is untyped
Queue: Any = kombu.entity.Queue
WAIT = 30


def test_a_celery_countdown_to_a_quorum_queue_runs_through_native_delayed_delivery(
    fresh_vhost_url: str,
) -> None:
    spec = QueueSpec(
        "nd.quorum",
        exchange="nd",
        exchange_type="topic",
        routing_key="nd.quorum",
        queue_arguments={"x-queue-type": "quorum"},
    )
    with (
        in_process_worker(fresh_vhost_url, queues=[spec.name], queue_specs={spec.name: spec}),
        celery_client_for(fresh_vhost_url, spec.name) as client,
    ):
        client.conf.task_queues = [
            Queue(
                spec.name,
                Exchange("nd", type="topic"),
                routing_key="nd.quorum",
                queue_arguments={"x-queue-type": "quorum"},
            )
        ]
        result = client.send_task("extra.whoami", countdown=3)
        info = result.get(timeout=WAIT)
    key = info["delivery_info"]["routing_key"]
    bits = key.split(".")[:28]
    assert int("".join(bits), 2) == 3 and key.endswith(".nd.quorum")  # through the levels
    # it reached the queue by dead-lettering out of the level queues, i.e. when its time was up
    assert info["delivery_info"]["exchange"] == "celery_delayed_delivery"
    vhost = fresh_vhost_url.rsplit("/", 1)[1]
    queues = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")
    levels = {line.split("\t")[0] for line in queues.splitlines() if "celery_delayed_" in line}
    assert levels == {f"celery_delayed_{n}" for n in range(28)} and "reject-publish" in queues
