"""Celery's built-in tasks in our worker, sent by name in the shapes Celery gives them:
``celery.accumulate``, ``celery.group``, ``celery.chord``, ``celery.chunks``, ``celery.map``,
``celery.starmap``, ``celery.backend_cleanup`` (results in Redis, read with our client)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amqptool.backends import backend_from_url, result_document
from amqptool.client import Client, signature
from amqptool.client.result import result_from_tuple
from tests.backend_support import REDIS_URL, forget_redis_keys
from tests.peers import api_tasks, results_tasks  # noqa: F401  # registers api.*, res.*
from tests.worker_support import in_process_worker

T = 20


@pytest.fixture
def client(broker_url: str) -> Iterator[Client]:
    with (
        in_process_worker(broker_url, result_backend=REDIS_URL) as w,
        Client(url=broker_url, backend=REDIS_URL, default_queue=w.config.queues[0]) as c,
    ):
        yield c


def sig(name: str, *args: Any, **options: Any) -> Any:
    return signature(name, args, options=options)


def test_accumulate_returns_the_args_or_one_of_them(client: Client) -> None:
    all_args = client.send_task("celery.accumulate", (1, 2, 3))
    one = client.send_task("celery.accumulate", (1, 2, 3), {"index": 1})
    assert (all_args.get(timeout=T), one.get(timeout=T)) == ([1, 2, 3], 2)
    forget_redis_keys([all_args.id, one.id])


def test_group_task_sends_its_members_with_the_partial_args(client: Client) -> None:
    gid, ids = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(2)]
    members = [sig("api.add", 10, task_id=ids[0]), sig("api.add", 20, task_id=ids[1])]
    result = [[gid, None], [[[i, None], None] for i in ids]]
    r = client.send_task("celery.group", (members, result, gid, [1]))
    assert r.get(timeout=T) == result
    assert [client.AsyncResult(i).get(timeout=T) for i in ids] == [11, 21]
    forget_redis_keys([r.id, *ids])


def test_chord_task_runs_header_then_body(client: Client) -> None:
    body_id = str(uuid.uuid4())
    header = [sig("api.add", i, i) for i in range(3)]
    r = client.send_task("celery.chord", (header, sig("res.tsum", task_id=body_id)))
    assert r.get(timeout=T) == [[body_id, None], None]
    assert client.AsyncResult(body_id).get(timeout=T) == 0 + 2 + 4
    forget_redis_keys([r.id, body_id])


def test_chunks_task_sends_a_group_of_starmaps(client: Client) -> None:
    r = client.send_task("celery.chunks", (sig("api.add"), [[1, 2], [3, 4], [5, 6]], 2))
    group = result_from_tuple(r.get(timeout=T), client.results, app=client)
    assert group.get(timeout=T) == [[3, 7], [11]]
    forget_redis_keys([r.id, group.id, *(m.id for m in group.results)])


def test_map_and_starmap_call_the_task_in_process(client: Client) -> None:
    m = client.send_task("celery.map", (), {"task": sig("api.add", 1), "it": [1, 2]})
    s = client.send_task("celery.starmap", (), {"task": sig("api.add"), "it": [[1, 2], [3, 4]]})
    with pytest.raises(TypeError):
        m.get(timeout=T)  # api.add needs two arguments: map passes one, as Celery's does
    assert s.get(timeout=T) == [3, 7]
    forget_redis_keys([m.id, s.id])


def test_backend_cleanup_drops_expired_sql_results(tmp_path: Path, broker_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    url = f"db+sqlite:///{tmp_path / 'r.db'}"
    backend = backend_from_url(url, expires=60)
    old = result_document("old", "SUCCESS", 1, date_done=datetime.now(UTC) - timedelta(hours=2))
    backend.store(old)
    backend.store(result_document("new", "SUCCESS", 2))
    with (
        in_process_worker(broker_url, result_backend=url, result_expires=60) as w,
        Client(url=broker_url, backend=url, default_queue=w.config.queues[0]) as c,
    ):
        c.send_task("celery.backend_cleanup").get(timeout=T)
    assert backend.get("old")["status"] == "PENDING"
    assert backend.get("new")["result"] == 2
    backend.close()
