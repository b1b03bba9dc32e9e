"""Our worker's administrative control commands, on the real broker, with Celery's reply shapes.

``stats``, ``conf``, ``report``, ``query_task``, ``active``/``reserved`` request-info,
``active_queues``, ``add_consumer``/``cancel_consumer``, ``pool_grow``/``pool_shrink`` (threads
and prefork, prefetch following), ``autoscale``/``pool_restart``/``objgraph``/``election``,
``memsample``/``memdump``; bad arguments and unknown commands answered with an error reply
while the worker goes on; ``--disable-control`` validated. Pure parts (queue specs against
kombu's own description, censoring) are checked without a broker.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.codec.times import utcnow
from amqptool.control import ControlClient
from amqptool.errors import UsageError
from amqptool.settings import BrokerSettings
from tests.celery.test_control_cli import control
from tests.harness import rabbitmqctl, unique, wait_until
from tests.worker_support import (
    Collector,
    WorkerProcess,
    close_connection_named,
    connect,
    in_process_worker,
    publish_task,
)
from worker import Worker
from worker.config import WorkerConfig
from worker.control.info import mask_settings, settings_table
from worker.policy.queues import QueueSpec

TASKS = "tests.peers.amqptool_tasks"
REQUEST_INFO_KEYS = {
    "id",
    "name",
    "args",
    "kwargs",
    "type",
    "hostname",
    "time_start",
    "acknowledged",
    "delivery_info",
    "worker_pid",
}
RUSAGE_KEYS = {
    "utime",
    "stime",
    "maxrss",
    "ixrss",
    "idrss",
    "isrss",
    "minflt",
    "majflt",
    "nswap",
    "inblock",
    "oublock",
    "msgsnd",
    "msgrcv",
    "nsignals",
    "nvcsw",
    "nivcsw",
}


def start(url: str, **kw: Any) -> Worker:
    kw.setdefault("pool", "threads")
    kw.setdefault("concurrency", 2)
    return Worker(
        TASKS,
        settings=url,
        queues=[unique("adminq")],
        nodename=f"{unique('admin')}@localhost",
        **kw,
    ).start()


def finish(w: Worker) -> None:
    w.stop()
    if not w.join(30):
        w.stop(cold=True)
        w.join(10)


@pytest.fixture(scope="module")
def ours(broker_url: str) -> Iterator[Worker]:
    w = start(broker_url)
    try:
        yield w
    finally:
        finish(w)


@pytest.fixture
def ctl(broker_url: str) -> Iterator[ControlClient]:
    with ControlClient(BrokerSettings.from_url(broker_url)) as client:
        yield client


def ask(ctl: ControlClient, w: Worker, method: str, **arguments: Any) -> Any:
    replies = ctl.call(method, arguments, destination=[w.nodename], timeout=5)
    assert w.nodename in replies, f"{method}: no reply from {w.nodename}"
    return replies[w.nodename]


# --------------------------------------------------------------------------- pure parts


def test_queue_specs_are_described_and_declared_exactly_as_celery_does() -> None:
    from celery import Celery
    from kombu.transport.base import to_rabbitmq_queue_arguments

    app = Celery("golden", set_as_current=False)
    cases: list[dict[str, Any]] = [
        {},
        {
            "exchange": "ex",
            "exchange_type": "topic",
            "routing_key": "a.#",
            "durable": False,
            "auto_delete": True,
            "exclusive": True,
            "expires": 60,
            "message_ttl": 1.5,
            "max_priority": 5,
            "max_length": 10,
            "queue_arguments": {"x-queue-mode": "lazy"},
        },
        {"exchange_durable": False, "queue_durable": True, "binding_arguments": {"a": 1}},
    ]
    for i, options in enumerate(cases):
        name = f"q{i}"
        ours = QueueSpec.from_options(name, **options)
        # what Celery's Consumer.add_task_queue does with add_consumer's arguments
        rest = dict(options)
        theirs = app.amqp.queues.select_add(
            name,
            exchange=rest.pop("exchange", name),
            exchange_type=rest.pop("exchange_type", "direct"),
            routing_key=rest.pop("routing_key", None),
            **rest,
        )
        assert ours.as_celery_dict() == json.loads(json.dumps(theirs.as_dict(recurse=True)))
        limits = {
            k: options[k]
            for k in ("expires", "message_ttl", "max_priority", "max_length")
            if k in options
        }
        assert ours.declare_arguments() == to_rabbitmq_queue_arguments(
            dict(options.get("queue_arguments") or {}), **limits
        )
    app.close()
    assert QueueSpec.default("celery") == QueueSpec.from_options("celery")
    for bad, message in (
        ({"durabel": True}, "unknown queue option"),
        ({"exchange_type": "fanfare"}, "exchange_type"),
        ({"expires": "soon"}, "expires must be a number"),
        ({"no_ack": True}, "no_ack"),
    ):
        with pytest.raises(ValueError, match=message):
            QueueSpec.from_options("q", **bad)


def test_settings_are_censored_like_celerys_and_never_show_the_password() -> None:
    settings = BrokerSettings.from_url("amqp://bob:S3CRET-pw@rabbit.example:5673/prod", environ={})
    config = WorkerConfig.build(settings, nodename="n@h", pool="threads", concurrency=3)
    table = settings_table(config, {}, with_defaults=True)
    assert "S3CRET" not in json.dumps(table)
    assert table["broker_url"] == "amqp://bob:****@rabbit.example:5673/prod"
    brief = settings_table(config, {})
    assert {"broker_url", "include", "worker_pool", "worker_concurrency"} <= set(brief)
    assert "timezone" not in brief and table["timezone"] == "UTC"
    masked = mask_settings({"aws_secret_key": "x", "result_backend": "redis://u:pw@h/0", "n": 1})
    assert masked == {"aws_secret_key": "********", "result_backend": "redis://u:****@h/0", "n": 1}


def test_disable_control_names_are_checked_when_the_worker_is_built(broker_url: str) -> None:
    with pytest.raises(UsageError, match="unknown control command 'shutdwn'"):
        Worker(TASKS, settings=broker_url, disable_control="ping,shutdwn")
    w = Worker(TASKS, settings=broker_url, disable_control=" dump_tasks , shutdown")
    assert w.consumer.panel.disabled == {"registered", "shutdown"}


# --------------------------------------------------------------------------- inspect


def test_stats_has_every_key_flower_reads_with_celerys_types(
    ours: Worker, ctl: ControlClient
) -> None:
    stats = ask(ctl, ours, "stats")
    assert {"total", "broker", "pool", "pid", "prefetch_count", "rusage", "clock", "uptime"} <= set(
        stats
    )
    assert isinstance(stats["total"], dict) and stats["pid"] == os.getpid()
    assert stats["clock"].isdigit() and isinstance(stats["uptime"], int)
    assert stats["prefetch_count"] == 8 and set(stats["rusage"]) == RUSAGE_KEYS
    pool = stats["pool"]
    assert pool["max-concurrency"] == 2 and pool["processes"] == [os.getpid()]
    assert {"implementation", "max-tasks-per-child", "put-guarded-by-semaphore"} <= set(pool)
    broker = stats["broker"]
    assert broker["userid"] == "guest" and broker["hostname"] == "127.0.0.1"
    assert "password" not in broker and ":guest@" not in json.dumps(stats)


def test_conf_lists_the_settings_with_the_password_masked(
    ours: Worker, cli_env: dict[str, str]
) -> None:
    node = ours.nodename
    r = control("conf", "--json", "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    conf = json.loads(r.stdout)[node]
    assert conf["broker_url"] == ours.config.settings.redacted()
    assert TASKS in conf["include"] and conf["worker_pool"] == "threads"
    assert "timezone" not in conf
    full = json.loads(
        control("dump_conf", "--with-defaults", "--json", "-d", node, env=cli_env).stdout
    )[node]
    assert full["timezone"] == "UTC" and full["result_backend"] == "rpc://"
    assert ":guest@" not in r.stdout + json.dumps(full)


def test_report_is_celerys_ok_text_with_software_platform_and_settings(
    ours: Worker, cli_env: dict[str, str]
) -> None:
    r = control("report", "-d", ours.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"->  {ours.nodename}: OK")
    for part in ("software -> amqptool-worker:", "platform -> system:", "broker_url: 'amqp://"):
        assert part in r.stdout
    assert ":guest@" not in r.stdout


def test_query_task_and_the_request_info_of_active_reserved_and_scheduled(
    broker_url: str, ctl: ControlClient
) -> None:
    w = start(broker_url, concurrency=1)
    try:
        q = w.config.queues[0]
        with Collector(broker_url) as replies:
            running = publish_task(broker_url, q, "peer.sleep", 1.5, reply_to=replies.name)
            waiting = publish_task(broker_url, q, "peer.add", 2, 3, reply_to=replies.name)
            later = publish_task(
                broker_url, q, "peer.add", 1, 1, eta=utcnow() + timedelta(seconds=60)
            )
            wait_until(lambda: ask(ctl, w, "active"), message="the sleeper to start")
            unknown = str(uuid.uuid4())
            found = ask(ctl, w, "query_task", ids=[running.id, waiting.id, later.id, unknown])
            assert {k: v[0] for k, v in found.items()} == {
                running.id: "active",
                waiting.id: "reserved",
                later.id: "scheduled",
            }
            assert ask(ctl, w, "query_task", ids=waiting.id) == {waiting.id: found[waiting.id]}
            active = ask(ctl, w, "active")[0]
            reserved = ask(ctl, w, "reserved")[0]
            for info in (active, reserved, found[later.id][1]):
                assert set(info) == REQUEST_INFO_KEYS
                assert set(info["delivery_info"]) == {
                    "exchange",
                    "routing_key",
                    "priority",
                    "redelivered",
                }
            assert (active["id"], active["args"], active["acknowledged"]) == (
                running.id,
                [1.5],
                True,
            )
            assert isinstance(active["time_start"], float) and active["worker_pid"] == os.getpid()
            assert (reserved["id"], reserved["time_start"], reserved["worker_pid"]) == (
                waiting.id,
                None,
                None,
            )
            assert ask(ctl, w, "active", safe=True)[0]["args"] == "(1.5,)"
            assert replies.wait_result(waiting.id, "SUCCESS")["result"] == 5
    finally:
        ask(ctl, w, "revoke", task_id=[later.id])
        finish(w)


def test_memory_and_debugging_commands_answer_like_celerys(
    ours: Worker, ctl: ControlClient
) -> None:
    sample = ask(ctl, ours, "memsample")
    assert re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB)", sample), sample
    dump = ask(ctl, ours, "memdump", samples=5)
    assert dump.startswith("- rss (sample):\n-    > ") and "- rss (end): " in dump
    assert ask(ctl, ours, "objgraph") == {"error": "ImportError('Requires the objgraph library')"}
    assert ask(ctl, ours, "autoscale", max=4, min=1) == {
        "error": "ValueError('Autoscale not enabled')"
    }
    assert ask(ctl, ours, "pool_restart") == {"error": "ValueError('Pool restarts not enabled')"}
    assert ask(ctl, ours, "election", id="e1", topic="global", action="noop") is None


# --------------------------------------------------------------------------- queues


def test_add_consumer_declares_like_celery_consumes_and_cancel_consumer_stops(
    broker_url: str, ours: Worker, ctl: ControlClient, cli_env: dict[str, str]
) -> None:
    node, extra, routed = ours.nodename, unique("extra"), unique("routed")
    r = control("add_consumer", extra, "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [f"->  {node}: OK", f"        add consumer {extra}"]
    queues = {q["name"]: q for q in ask(ctl, ours, "active_queues")}
    assert queues[extra] == QueueSpec.default(extra).as_celery_dict()
    assert ask(
        ctl,
        ours,
        "add_consumer",
        queue=routed,
        exchange=routed + ".x",
        exchange_type="topic",
        routing_key="jobs.#",
        auto_delete=True,
    ) == {"ok": f"add consumer {routed}"}
    with Collector(broker_url) as replies, connect(broker_url) as conn:
        ch = conn.channel()
        a = publish_task(broker_url, extra, "peer.add", 1, 1, reply_to=replies.name)
        replies.wait_result(a.id, "SUCCESS")
        b = TaskMessage(task="peer.mul", args=[6, 7], reply_to=replies.name)
        ch.publish(encode_task(b, exchange=routed + ".x", routing_key="jobs.urgent"))
        assert replies.wait_result(b.id, "SUCCESS")["result"] == 42
        assert ask(ctl, ours, "cancel_consumer", queue=extra) == {
            "ok": f"no longer consuming from {extra}"
        }
        assert extra not in {q["name"] for q in ask(ctl, ours, "active_queues")}
        left = publish_task(broker_url, extra, "peer.add", 2, 2, reply_to=replies.name)
        probe = publish_task(
            broker_url, ours.config.queues[0], "peer.add", 0, 0, reply_to=replies.name
        )
        replies.wait_result(probe.id, "SUCCESS")
        assert ch.queue_declare(extra, passive=True).message_count == 1
        assert replies.results(left.id) == []
        ch.queue_delete(extra)
        ask(ctl, ours, "cancel_consumer", queue=routed)


def test_an_added_consumer_is_declared_and_consumed_again_after_a_reconnect(
    broker_url: str, ctl: ControlClient
) -> None:
    w = start(broker_url)
    extra = unique("kept")
    try:
        ask(ctl, w, "add_consumer", queue=extra, exclusive=True)  # gone with the old connection
        close_connection_named(w.connection_name)
        wait_until(lambda: w.consumer.link.generation == 2, message="the worker to reconnect")
        # a request sent before the new pidbox queue is bound is lost: ask until one is answered
        wait_until(
            lambda: ctl.call("ping", destination=[w.nodename], timeout=0.5),
            message="the reconnected worker to answer",
        )
        assert extra in {q["name"] for q in ask(ctl, w, "active_queues")}
        with Collector(broker_url) as replies:
            t = publish_task(broker_url, extra, "peer.add", 20, 22, reply_to=replies.name)
            assert replies.wait_result(t.id, "SUCCESS")["result"] == 42
    finally:
        finish(w)


def queue_row(vhost: str, name: str) -> list[str]:
    """``durable``, ``auto_delete``, ``arguments``, ``consumers`` of a queue, as the broker
    itself lists them (not through our own code)."""
    out = rabbitmqctl(
        "list_queues",
        "-p",
        vhost,
        "name",
        "durable",
        "auto_delete",
        "arguments",
        "consumers",
        "--no-table-headers",
    )
    rows = [line.split("\t") for line in out.splitlines()]
    return next(row[1:] for row in rows if row and row[0] == name)


def test_an_existing_queue_with_other_arguments_is_consumed_as_it_is(
    broker_url: str, broker_vhost: str, ours: Worker, ctl: ControlClient
) -> None:
    # Issue #20: never a 406 from our own declaration. A queue declared by someone else, with
    # flags and arguments Celery's would not have, is consumed without being declared again.
    other = unique("other")
    with connect(broker_url) as conn:
        conn.channel().queue_declare(other, auto_delete=True, arguments={"x-max-length": 1000})
        before = queue_row(broker_vhost, other)
        assert before[:2] == ["false", "true"] and "x-max-length" in before[2], before
        try:
            assert ask(ctl, ours, "add_consumer", queue=other) == {"ok": f"add consumer {other}"}
            assert other in {q["name"] for q in ask(ctl, ours, "active_queues")}
            with Collector(broker_url) as replies:
                t = publish_task(broker_url, other, "peer.add", 2, 5, reply_to=replies.name)
                assert replies.wait_result(t.id, "SUCCESS")["result"] == 7
            # Same queue (not deleted and declared anew), same flags and arguments, one consumer.
            assert queue_row(broker_vhost, other) == [*before[:3], "1"]
        finally:
            ask(ctl, ours, "cancel_consumer", queue=other)


def test_a_refused_declaration_is_an_error_reply_and_the_worker_goes_on(
    broker_url: str, ours: Worker, ctl: ControlClient
) -> None:
    # Names starting with "amq." are the broker's own: declaring one is 403 ACCESS_REFUSED.
    refused = unique("amq.refused")
    reply = ask(ctl, ours, "add_consumer", queue=refused)
    assert "error" in reply and "ACCESS_REFUSED" in reply["error"], reply
    # An exclusive queue of another connection: 405 RESOURCE_LOCKED.
    locked = unique("locked")
    with connect(broker_url) as conn:
        conn.channel().queue_declare(locked, exclusive=True)
        for flags in ({}, {"exclusive": True}):  # inspected first, or declared exclusive
            reply = ask(ctl, ours, "add_consumer", queue=locked, **flags)
            assert "error" in reply and "RESOURCE_LOCKED" in reply["error"], (flags, reply)
    names = {q["name"] for q in ask(ctl, ours, "active_queues")}
    assert refused not in names and locked not in names
    assert "unknown queue option" in ask(ctl, ours, "add_consumer", queue="x", durabel=1)["error"]
    assert ask(ctl, ours, "ping") == {"ok": "pong"}
    with Collector(broker_url) as replies:
        t = publish_task(broker_url, ours.config.queues[0], "peer.add", 3, 4, reply_to=replies.name)
        assert replies.wait_result(t.id, "SUCCESS")["result"] == 7


# --------------------------------------------------------------------------- pool size


def test_pool_grow_and_shrink_resize_the_thread_pool_and_the_prefetch(
    broker_url: str, ctl: ControlClient
) -> None:
    w = start(broker_url, concurrency=1)
    try:
        assert ask(ctl, w, "pool_grow", n=2) == {"ok": "pool will grow"}
        stats = ask(ctl, w, "stats")
        assert (stats["pool"]["max-concurrency"], stats["prefetch_count"]) == (3, 12)
        with Collector(broker_url) as replies:
            sleepers = [
                publish_task(
                    broker_url, w.config.queues[0], "peer.sleep", 0.8, reply_to=replies.name
                )
                for _ in range(3)
            ]
            wait_until(lambda: len(ask(ctl, w, "active")) == 3, message="3 tasks at once")
            for s in sleepers:
                replies.wait_result(s.id, "SUCCESS")
            assert ask(ctl, w, "pool_shrink", n=2) == {"ok": "pool will shrink"}
            stats = ask(ctl, w, "stats")
            assert (stats["pool"]["max-concurrency"], stats["prefetch_count"]) == (1, 4)
            _one, two = (
                publish_task(
                    broker_url, w.config.queues[0], "peer.sleep", 0.5, reply_to=replies.name
                )
                for _ in range(2)
            )
            wait_until(lambda: ask(ctl, w, "active"), message="the first of two to start")
            assert len(ask(ctl, w, "active")) == 1 and len(ask(ctl, w, "reserved")) == 1
            replies.wait_result(two.id, "SUCCESS")
        assert "below one slot" in ask(ctl, w, "pool_shrink", n=1)["error"]
    finally:
        finish(w)


def test_the_solo_pool_refuses_to_resize(broker_url: str, ctl: ControlClient) -> None:
    w = start(broker_url, pool="solo")
    try:
        assert ask(ctl, w, "pool_grow") == {
            "error": "pool_grow is not supported by the solo pool (it has one slot)"
        }
        assert "solo" in ask(ctl, w, "pool_shrink", n=1)["error"]
        assert ask(ctl, w, "stats")["pool"]["max-concurrency"] == 1
    finally:
        finish(w)


@pytest.mark.slow
def test_a_busy_prefork_pool_answers_at_once_and_grows_and_shrinks_its_children(
    broker_url: str, ctl: ControlClient, cli_env: dict[str, str]
) -> None:
    with WorkerProcess(broker_url, "-P", "prefork", "-c", "2") as wp, Collector(broker_url) as rs:
        node = wp.nodename
        # 2 run, 2 wait in the children's pipes, the 5th waits for a free slot
        tasks = [
            publish_task(broker_url, wp.queue, "peer.sleep", 2.0, reply_to=rs.name)
            for _ in range(5)
        ]

        def active() -> int:
            return len(ctl.call("active", destination=[node], timeout=5)[node])

        wait_until(lambda: active() == 2, message="both children busy")
        r = control("-t", "5", "stats", "--json", "-d", node, env=cli_env)
        assert r.returncode == 0, r.stderr
        before = json.loads(r.stdout)[node]
        assert active() == 2  # answered while both children were still busy
        assert len(before["pool"]["processes"]) == 2 and before["prefetch_count"] == 8

        grown = control("pool_grow", "1", "-d", node, env=cli_env)
        assert grown.returncode == 0 and "pool will grow" in grown.stdout
        wait_until(lambda: active() == 3, message="the 5th task to start on the new child")
        stats = ctl.call("stats", destination=[node], timeout=5)[node]
        assert stats["pool"]["max-concurrency"] == 3 and stats["prefetch_count"] == 12
        assert len(set(stats["pool"]["processes"]) - set(before["pool"]["processes"])) == 1

        assert ctl.call("pool_shrink", {"n": 1}, destination=[node], timeout=5)[node] == {
            "ok": "pool will shrink"
        }
        for t in tasks:
            assert rs.wait_result(t.id, "SUCCESS", timeout=15)["result"] == 2.0

        def processes() -> list[int]:
            return list(ctl.call("stats", destination=[node], timeout=5)[node]["pool"]["processes"])

        wait_until(lambda: len(processes()) == 2, message="one child retired")
        stats = ctl.call("stats", destination=[node], timeout=5)[node]
        assert stats["pool"]["max-concurrency"] == 2 and stats["prefetch_count"] == 8
        assert "exited with" not in wp.output()  # retired, not replaced as a dead child


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("method", "arguments", "needle"),
    [
        ("pool_grow", {"n": "lots"}, "ValueError("),
        ("pool_grow", {"n": 0}, "at least 1"),
        ("pool_shrink", {"n": 99}, "below one slot"),
        ("query_task", {"ids": 5}, "TypeError("),
        ("add_consumer", {}, "TypeError("),
        ("add_consumer", {"queue": ""}, "non-empty"),
        ("cancel_consumer", {}, "TypeError("),
        ("conf", {"with_defaults": "maybe"}, "with_defaults"),
        ("memdump", {"samples": "x"}, "ValueError("),
        ("election", {}, "TypeError("),
        ("no_such_command", {}, "KeyError('no_such_command')"),
    ],
)
def test_bad_arguments_get_an_error_reply_never_a_crash(
    ours: Worker, ctl: ControlClient, method: str, arguments: dict[str, Any], needle: str
) -> None:
    reply = ask(ctl, ours, method, **arguments)
    assert isinstance(reply, dict) and needle in reply.get("error", ""), reply
    assert ask(ctl, ours, "ping") == {"ok": "pong"}
    assert ask(ctl, ours, "stats")["pool"]["max-concurrency"] == 2


def test_pool_grow_beyond_the_cap_is_refused_and_the_pool_stays(broker_url: str) -> None:
    from worker.runtime.consumer import MAX_POOL_SIZE

    with in_process_worker(broker_url, pool="threads", concurrency=2) as w:
        client = ControlClient(BrokerSettings.from_url(broker_url, environ={}))
        try:
            reply = client.call("pool_grow", {"n": MAX_POOL_SIZE}, destination=[w.nodename])
            assert "error" in reply[w.nodename] and str(MAX_POOL_SIZE) in reply[w.nodename]["error"]
            stats = client.call("stats", destination=[w.nodename])[w.nodename]
            assert stats["pool"]["max-concurrency"] == 2
        finally:
            client.close()
