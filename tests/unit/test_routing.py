"""The client's router decides as Celery's router does (compared with Celery's own)."""

from __future__ import annotations

import re
from typing import Any

import kombu.entity
import pytest

from amqptool.celeryconf.routing import Destination, Router
from amqptool.errors import UsageError

Exchange: Any = kombu.entity.Exchange  # kombu is untyped
Queue: Any = kombu.entity.Queue

media = Exchange("media", type="topic")
CONF: dict[str, Any] = {
    "task_default_queue": "default",
    "task_queues": (
        Queue("default", Exchange("default"), routing_key="default"),
        Queue("qq", Exchange("qq"), routing_key="qq", queue_arguments={"x-queue-type": "quorum"}),
        Queue("images", media, routing_key="media.image"),
    ),
    "task_routes": [
        {"proj.exact": {"queue": "qq"}, "proj.glob.*": "qq", re.compile(r"proj\.re\d"): "images"},
        lambda name, args, kwargs, options, task=None: (
            {"queue": "images", "routing_key": "media.video"} if name == "proj.video" else None
        ),
    ],
}


def _celery(conf: dict[str, Any], name: str, **options: Any) -> tuple[str, str, str | None]:
    """What Celery 5.7 publishes: (exchange, routing key, queue declared)."""
    from celery import Celery

    app = Celery("routing", set_as_current=False)
    app.conf.update(conf)
    routed = app.amqp.router.route(dict(options), name, (), {})
    queue = routed.get("queue")
    exchange, key = routed.get("exchange"), routed.get("routing_key")
    kind = queue.exchange.type if queue is not None else "direct"
    if (not exchange or not key) and kind == "direct":
        exchange, key = "", queue.name
    elif exchange is None:
        exchange, key = queue.exchange.name, key or queue.routing_key
    return exchange, key, queue.name if queue is not None else None


def _ours(dest: Destination) -> tuple[str, str, str | None]:
    return dest.exchange, dest.routing_key, dest.queue.name if dest.queue else None


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("proj.other", {}),
        ("proj.exact", {}),
        ("proj.glob.one", {}),
        ("proj.re7", {}),
        ("proj.video", {}),
        ("proj.exact", {"queue": "default"}),
        ("proj.other", {"queue": "images", "routing_key": "media.sound"}),
        ("proj.other", {"exchange": "media", "routing_key": "media.x"}),
        ("proj.other", {"queue": "brand-new"}),
    ],
)
def test_same_destination_as_celery(name: str, options: dict[str, Any]) -> None:
    ours = Router(CONF).route(
        name,
        queue=options.get("queue"),
        exchange=options.get("exchange"),
        routing_key=options.get("routing_key"),
    )
    assert _ours(ours) == _celery(CONF, name, **options)


def test_declarations_keep_the_queue_arguments() -> None:
    dest = Router(CONF).route("proj.exact")
    assert dest.queue is not None and dest.queue.arguments == {"x-queue-type": "quorum"}


def test_defaults_without_config() -> None:
    assert _ours(Router().route("x")) == ("", "celery", "celery")
    assert _ours(Router({"task_default_queue": "work"}).route("x")) == ("", "work", "work")


def test_a_missing_queue_with_create_missing_off() -> None:
    router = Router(dict(CONF, task_create_missing_queues=False))
    with pytest.raises(UsageError, match="queue 'nowhere' missing from task_queues"):
        router.route("proj.other", queue="nowhere")
