"""The task API inside our worker (results in Redis, read with our client): ``throws``,
``request.headers``/``properties``/custom headers/``expires``, ``Task.replace``, a ``set``
result, ``AsyncResult.revoke()``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import tests.peers.api_tasks  # noqa: F401  # registers api.* in our worker's registry
from amqptool.client import Client
from tests.backend_support import REDIS_URL, forget_redis_keys
from tests.harness import unique
from tests.worker_support import in_process_worker

T = 20


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def client(broker_url: str) -> Iterator[Client]:
    ids: list[str] = []
    with (
        in_process_worker(broker_url, concurrency=1, result_backend=REDIS_URL) as w,
        Client(url=broker_url, backend=REDIS_URL, default_queue=w.config.queues[0]) as c,
    ):
        original = c.send_task

        def tracked(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            ids.append(result.id)
            return result

        c.send_task = tracked  # type: ignore[method-assign]  # remember ids for clean-up
        yield c
    forget_redis_keys(ids)


def test_throws_is_logged_without_a_traceback(client: Client) -> None:
    lines = Lines()
    logger = logging.getLogger("worker.execute")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    try:
        r = client.send_task("api.expected", ("k",))
        with pytest.raises(KeyError):
            r.get(timeout=T)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    (line,) = [x for x in lines.records if r.id in x.getMessage()]
    assert line.levelno == logging.INFO
    assert "raised expected: KeyError('k')" in line.getMessage()
    assert "Traceback" not in line.getMessage() and line.exc_info is None


def test_request_headers_properties_and_expires_as_celery(client: Client) -> None:
    r = client.send_task("api.request", headers={"x_custom": "hi"}, expires=120)
    got = r.get(timeout=T)
    assert got["headers"] == {"x_custom": "hi"}
    assert got["x_custom"] == "hi"
    assert got["application_headers"] == "hi"
    assert {"application_headers", "correlation_id", "reply_to", "content_type"} <= set(
        got["properties"]
    )
    assert isinstance(got["expires"], str) and got["expires"].endswith("+00:00")


def test_replace_hands_the_result_to_the_replacement(client: Client) -> None:
    r = client.send_task("api.replaced", (1,))
    assert r.get(timeout=T) == 101


def test_a_set_result_fails_with_encode_error(client: Client) -> None:
    r = client.send_task("api.aset")
    with pytest.raises(Exception) as info:
        r.get(timeout=T)
    assert type(info.value).__name__ == "EncodeError"
    assert "set is not JSON serializable" in str(info.value)


def test_revoke_through_the_result(client: Client) -> None:
    import redis

    key = unique("api-go")
    busy = client.send_task("api.block", (key,))  # holds the only slot until the key is set
    queued = client.send_task("api.add", (1, 1))
    queued.revoke()
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.set(key, "1", ex=60)
        assert busy.get(timeout=T) == "unblocked"
        server.delete(key)
    finally:
        server.close()
    with pytest.raises(Exception) as info:
        queued.get(timeout=T)
    assert type(info.value).__name__ == "TaskRevokedError"
    assert queued.state == "REVOKED"


def test_a_task_with_its_own_result_backend_stores_there(client: Client, broker_url: str) -> None:
    from amqptool.backends import backend_from_url

    url = "db+sqlite:////tmp/amqptool-api-elsewhere.db"
    r = client.send_task("api.elsewhere", (21,))
    elsewhere = backend_from_url(url)
    try:
        assert elsewhere.wait_for(r.id, timeout=T)["result"] == 42
        assert client.AsyncResult(r.id).state == "PENDING"  # not in the worker's Redis
        elsewhere.forget(r.id)
    finally:
        elsewhere.close()


def test_prefork_children_store_results(broker_url: str) -> None:
    with (
        in_process_worker(broker_url, pool="prefork", concurrency=2, result_backend=REDIS_URL) as w,
        Client(url=broker_url, backend=REDIS_URL, default_queue=w.config.queues[0]) as c,
    ):
        results = [c.send_task("api.add", (i, i)) for i in range(6)]
        try:
            assert [r.get(timeout=T) for r in results] == [0, 2, 4, 6, 8, 10]
        finally:
            forget_redis_keys(r.id for r in results)
