"""Results stored in batches (worker/pool/result_writer.py, RedisBackend.store_many) are stored
exactly as one store per result: same keys, bytes, expiry and PUBLISH channel, a stored
SUCCESS never overwritten, readable by Celery 5.7; a worker's threads pool stores every one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.backends import backend_from_url, result_document
from amqptool.backends.meta import task_key
from amqptool.client import Client
from amqptool.codec.results import FAILURE, PENDING, RETRY, SUCCESS
from tests.backend_support import REDIS_URL, forget_redis_keys
from tests.worker_support import in_process_worker


@pytest.fixture
def ids() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    forget_redis_keys(made)


def _raw(key: str) -> tuple[bytes | None, int]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return client.get(key), int(client.ttl(key))
    finally:
        client.close()


def test_a_batch_writes_the_bytes_expiry_and_messages_of_one_store_each(ids: list[str]) -> None:
    import redis

    backend = backend_from_url(REDIS_URL, expires=3600)
    one_by_one, batched = (
        [str(uuid.uuid4()) for _ in range(5)],
        [str(uuid.uuid4()) for _ in range(5)],
    )
    ids.extend(one_by_one + batched)
    docs = [
        result_document(tid, SUCCESS, {"n": i, "s": "é"}, children=[], parent_id="p")
        for i, tid in enumerate(batched)
    ]
    twins = [dict(d, task_id=tid) for d, tid in zip(docs, one_by_one, strict=True)]
    sub = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
    sub.subscribe(*(task_key(t) for t in batched))
    try:
        sub.get_message(timeout=1)
        for doc in twins:
            backend.store(doc)
        assert backend.store_many(docs) == []
        messages: dict[str, bytes] = {}
        for _ in range(50):
            msg = sub.get_message(timeout=1)
            if msg is not None and msg["type"] == "message":
                messages[msg["channel"].decode()] = msg["data"]
            if len(messages) == len(batched):
                break
    finally:
        sub.close()
        backend.close()
    for doc, twin in zip(docs, twins, strict=True):
        value, ttl = _raw(task_key(doc["task_id"]))
        twin_value, _ = _raw(task_key(twin["task_id"]))
        assert value is not None and twin_value is not None
        assert value == twin_value.replace(twin["task_id"].encode(), doc["task_id"].encode())
        assert 0 < ttl <= 3600
        assert messages[task_key(doc["task_id"])] == value  # PUBLISH on the key's channel


def test_a_redis_user_without_scripting_still_gets_every_batch_stored(
    ids: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL that forbids scripts (EVAL/EVALSHA): the batch goes in one MULTI/EXEC instead."""
    import redis

    admin = redis.Redis.from_url(REDIS_URL)
    user = f"amqptool-noscript-{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], channels=["*"],
        commands=["+@all", "-@scripting"],
    )  # fmt: skip
    backend = backend_from_url(f"redis://{user}@127.0.0.1:6379/0", expires=600)
    batch = [str(uuid.uuid4()) for _ in range(4)]
    ids.extend(batch)
    try:
        first = [result_document(t, SUCCESS, i) for i, t in enumerate(batch[:2])]
        second = [result_document(t, SUCCESS, i) for i, t in enumerate(batch[2:])]
        assert backend.store_many(first) == []  # the script is refused, then the fallback
        assert backend.store_many(second) == []  # straight to the fallback
        for tid in batch:
            value, ttl = _raw(task_key(tid))
            assert value is not None and 0 < ttl <= 600
        assert [(backend.get(t) or {}).get("result") for t in batch] == [0, 1, 0, 1]
        refused = [r for r in caplog.records if "refused the result script" in r.getMessage()]
        assert len(refused) == 1  # learnt once, not tried again per batch
    finally:
        backend.close()
        admin.acl_deluser(user)
        admin.close()


def test_a_batch_never_overwrites_a_stored_success(ids: list[str]) -> None:
    backend = backend_from_url(REDIS_URL)
    done, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    ids.extend([done, fresh])
    try:
        backend.store(result_document(done, SUCCESS, 1))
        backend.store_many(
            [
                result_document(done, FAILURE, {"exc_type": "ValueError", "exc_message": ["x"]}),
                result_document(fresh, SUCCESS, 2),
                result_document(fresh, RETRY, None),  # later in the same batch: SUCCESS stays
            ]
        )
        assert backend.get(done)["result"] == 1
        assert backend.get(fresh)["status"] == SUCCESS
        assert backend.get(fresh)["result"] == 2
    finally:
        backend.close()


def test_celery_reads_a_batch(ids: list[str]) -> None:
    from celery import Celery

    backend = backend_from_url(REDIS_URL)
    batch = [str(uuid.uuid4()) for _ in range(3)]
    ids.extend(batch)
    try:
        backend.store_many([result_document(t, SUCCESS, [i, "x"]) for i, t in enumerate(batch)])
    finally:
        backend.close()
    app = Celery("reader", broker="memory://", backend=REDIS_URL)
    for i, tid in enumerate(batch):
        meta = app.backend.get_task_meta(tid)
        assert meta["status"] == SUCCESS
        assert meta["result"] == [i, "x"]
        assert meta["task_id"] == tid


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_pool_stores_every_result_of_many_tasks(broker_url: str, pool: str) -> None:
    sent: list[Any] = []
    try:
        with (
            in_process_worker(broker_url, result_backend=REDIS_URL, pool=pool, concurrency=4) as w,
            Client(url=broker_url, backend=REDIS_URL) as client,
        ):
            queue = w.config.queues[0]
            sent = [client.send_task("peer.add", (i, 1), queue=queue) for i in range(300)]
            assert [r.get(timeout=60) for r in sent] == [i + 1 for i in range(300)]
            backend = backend_from_url(REDIS_URL)
            try:
                for r in sent:
                    doc = backend.get(r.id)
                    assert list(doc) == [
                        "status",
                        "result",
                        "traceback",
                        "children",
                        "date_done",
                        "task_id",
                    ]
                    assert doc["status"] == SUCCESS and doc["task_id"] == r.id
            finally:
                backend.close()
            assert client.AsyncResult(str(uuid.uuid4())).state == PENDING
    finally:
        forget_redis_keys(r.id for r in sent)
