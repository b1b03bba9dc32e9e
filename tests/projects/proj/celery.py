"""The project's Celery app: settings, queues (a quorum and a priority queue) and routes."""

import os

from celery import Celery
from kombu import Exchange, Queue

app = Celery("proj", include=["proj.tasks"])

exchange = Exchange("proj", type="direct")
app.conf.update(
    broker_url=os.environ.get("PROJ_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    result_backend="rpc://",
    task_default_queue="proj.default",
    task_default_exchange="proj",
    task_default_routing_key="proj.default",
    task_queues=(
        Queue("proj.default", exchange, routing_key="proj.default"),
        Queue(
            "proj.quorum",
            exchange,
            routing_key="proj.quorum",
            queue_arguments={"x-queue-type": "quorum"},
        ),
        Queue(
            "proj.priority",
            exchange,
            routing_key="proj.priority",
            queue_arguments={"x-max-priority": 10},
        ),
    ),
    task_routes={
        "proj.tasks.where_*": {"queue": "proj.quorum"},
        "proj.tasks.urgent": {"queue": "proj.priority"},
    },
    task_track_started=True,
    worker_send_task_events=True,
    broker_connection_retry_on_startup=True,
)
