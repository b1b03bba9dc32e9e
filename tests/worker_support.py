"""Helpers for the worker tests: workers in-process and as subprocesses, reply queues, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from amqptool.client import Client
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import decode_events
from amqptool.codec.serialization import loads
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from tests.harness import ROOT, rabbitmqctl, stop_process, unique, wait_until
from worker import Worker

__all__ = [
    "Collector",
    "WorkerProcess",
    "close_celery",
    "close_connection_named",
    "connect",
    "in_process_worker",
    "publish_task",
    "worker_and_client",
]


def connect(url: str) -> Connection:
    return Connection(BrokerSettings.from_url(url, environ={}), name="worker-tests").connect()


@contextmanager
def in_process_worker(url: str, **kwargs: Any) -> Iterator[Worker]:
    """A started worker (threads pool unless told) on a unique queue; stopped and joined after."""
    kwargs.setdefault("queues", [unique("wq")])
    kwargs.setdefault("nodename", f"{unique('w')}@localhost")
    kwargs.setdefault("pool", "threads")
    kwargs.setdefault("concurrency", 2)
    w = Worker("tests.peers.amqptool_tasks", settings=url, **kwargs)
    w.start()
    try:
        yield w
    finally:
        w.stop()
        if not w.join(30):
            w.stop(cold=True)
            w.join(10)


@contextmanager
def worker_and_client(url: str, **kwargs: Any) -> Iterator[tuple[Worker, Client, str]]:
    """An in-process worker, a client on the same broker, and the worker's task queue."""
    with in_process_worker(url, **kwargs) as worker, Client(url=url) as client:
        yield worker, client, worker.config.queues[0]


class Collector:
    """A queue of our own (bound as asked), read with basic.get: results, events, dead letters."""

    def __init__(self, url: str, *, bind: tuple[str, str] | None = None) -> None:
        self.conn = connect(url)
        self.ch: Channel = self.conn.channel()
        self.name = unique("collect")
        self.ch.queue_declare(self.name, auto_delete=True)
        if bind is not None:
            if bind[0] == "celeryev":  # declared exactly as Celery and our worker do
                self.ch.exchange_declare("celeryev", "topic", durable=True)
            self.ch.queue_bind(self.name, bind[0], bind[1])
        self.messages: list[Envelope] = []

    def poll(self) -> list[Envelope]:
        while True:
            env = self.ch.get(self.name, no_ack=True)
            if env is None:
                return self.messages
            self.messages.append(env)

    def bodies(self) -> list[Any]:
        return [loads(e.body, e.properties.content_type) for e in self.poll()]

    def results(self, task_id: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies() if isinstance(b, dict) and b.get("task_id") == task_id]

    def wait_result(self, task_id: str, status: str | None = None, timeout: float = 10.0) -> Any:
        def ready() -> Any:
            done = [r for r in self.results(task_id) if status in (None, r["status"])]
            return done[-1] if done else None

        return wait_until(ready, timeout, message=f"a result for {task_id}")

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for env in self.poll():
            out.extend(decode_events(env))
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def celery_client_for(broker_url: str, queue: str, name: str = "client") -> Iterator[Any]:
    """A real Celery 5.7 client app (rpc:// results) whose default queue is ``queue``."""
    from celery import Celery

    client = Celery(name, broker=broker_url, backend="rpc://")
    client.conf.task_default_queue = queue
    try:
        yield client
    finally:
        close_celery(client)


def stub(*args: Any, **kwargs: Any) -> None:
    """Client-side task body: a Celery client only needs the task's name."""


def close_celery(app: Any) -> None:
    """Close a Celery client app and its rpc:// result consumer (app.close() leaves that open)."""
    consumer = getattr(app.backend, "result_consumer", None)
    if consumer is not None and getattr(consumer, "_connection", None) is not None:
        consumer.stop()
    app.close()
    from kombu import pools

    pools.reset()  # the producer pool is global to kombu and outlives the app


def publish_task(url: str, queue: str, name: str, *args: Any, **options: Any) -> TaskMessage:
    """Publish a v2 task message (the shape a Celery 5.7 client sends) with our transport."""
    msg = TaskMessage(task=name, args=list(args), **options)
    with connect(url) as conn:
        conn.channel().publish(encode_task(msg, routing_key=queue))
    return msg


def close_connection_named(name: str) -> None:
    """Close the one broker connection whose connection_name is ``name`` (never all of them)."""
    needle = f'{{"connection_name","{name}"}}'

    def find() -> str | None:
        for line in rabbitmqctl("list_connections", "pid", "client_properties").splitlines():
            if needle in line:
                return line.split("\t", 1)[0]
        return None

    pid = wait_until(find, 10, message=f"connection {name!r}")
    rabbitmqctl("close_connection", pid, "test: cutting the worker's connection")


class WorkerProcess:
    """``python -m worker`` as a subprocess (stderr captured to a file)."""

    def __init__(self, url: str, *args: str, queue: str | None = None) -> None:
        self.queue = queue or unique("wq")
        self.nodename = f"{unique('wp')}@localhost"
        self.args = ["-A", "tests.peers.amqptool_tasks", "-Q", self.queue, "-n", self.nodename]
        self.args += list(args)
        self.url = url
        self.log = Path(f"/tmp/{self.nodename.split('@')[0]}-{uuid.uuid4().hex[:4]}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        env = dict(os.environ)
        env["AMQP_URL"] = self.url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("CELERY_BROKER_URL", None)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        wait_until(
            lambda: "ready." in self.output() or self.proc is None or self.proc.poll() is not None,
            timeout,
            message=f"worker {self.nodename} to start",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("worker died:\n" + self.output()[-3000:])
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
