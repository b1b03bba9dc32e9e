"""The parity suite again, with OUR client (amqptool.client) instead of Celery's, against our
worker and a Celery 5.7 worker on Redis and PostgreSQL; plus reading a result by id from a
second process, and ``amqptool result``."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from amqptool.client import Client, chain, chord, chunks, group, xmap, xstarmap
from amqptool.errors import TaskTimeoutError
from tests.backend_support import REDIS_URL
from tests.harness import run_amqptool, wait_until
from tests.results_support import ResultsSetup, all_ids

pytestmark = pytest.mark.celery

T = 30


def test_value_state_and_date(our_client: Client, results_setup: ResultsSetup) -> None:
    r = our_client.send_task("res.add", (2, 2))
    results_setup.remember(r.id)
    assert r.get(timeout=T) == 4
    assert (r.state, r.ready(), r.successful()) == ("SUCCESS", True, True)
    assert r.date_done is not None
    assert r.children == []


def test_exception_keeps_its_type(our_client: Client, results_setup: ResultsSetup) -> None:
    r = our_client.send_task("res.fail", ("bad thing",))
    results_setup.remember(r.id)
    with pytest.raises(ValueError, match="bad thing"):
        r.get(timeout=T)
    assert r.state == "FAILURE"
    assert "ValueError: bad thing" in (r.traceback or "")


def test_children_of_a_task_calling_a_task(our_client: Client, results_setup: ResultsSetup) -> None:
    r = our_client.send_task("res.spawn", (3,))
    child_id = r.get(timeout=T)
    results_setup.remember(r.id, child_id)
    assert our_client.AsyncResult(child_id).get(timeout=T) == 6
    assert [c.id for c in r.children] == [child_id]


def test_pipe_builds_a_chain(our_client: Client, results_setup: ResultsSetup) -> None:
    add = our_client.signature("res.add")
    r = (add.clone((1, 1)) | add.clone((10,)) | our_client.signature("res.mul", (3,))).delay()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == 36
    assert r.parent is not None and r.parent.get(timeout=T) == 12
    first = r.parent.parent
    assert first is not None and [c.id for c in first.children] == [r.parent.id]


def test_chain_that_ends_in_a_group(our_client: Client, results_setup: ResultsSetup) -> None:
    add = our_client.signature("res.add")
    r = chain(add.clone((1, 1)), group(add.clone((1,)), add.clone((2,)))).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == [3, 4]


def test_group_saved_and_restored_in_another_client(
    our_client: Client, results_setup: ResultsSetup
) -> None:
    add = our_client.signature("res.add")
    r = group(add.clone((i, i)) for i in range(3)).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == [0, 2, 4]
    r.save()
    with Client(url=results_setup.broker_url, backend=results_setup.backend) as other:
        restored = other.GroupResult(r.id)
        assert restored is not None
        assert [x.id for x in restored] == [x.id for x in r]
        assert restored.join(timeout=T) == [0, 2, 4]


def test_chord(our_client: Client, results_setup: ResultsSetup) -> None:
    add = our_client.signature("res.add")
    r = chord([add.clone((i, i)) for i in range(4)], our_client.signature("res.tsum")).delay()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == 12


def test_chord_with_a_failed_header_fails_the_body(
    our_client: Client, results_setup: ResultsSetup
) -> None:
    header = [our_client.signature("res.add", (1, 1)), our_client.signature("res.fail", ("no",))]
    r = chord(header, our_client.signature("res.tsum")).delay()
    results_setup.remember(*all_ids(r))
    with pytest.raises(Exception) as info:
        r.get(timeout=T)
    assert type(info.value).__name__ == "ChordError"
    assert "ValueError('no')" in str(info.value)


def test_map_starmap_and_chunks(our_client: Client, results_setup: ResultsSetup) -> None:
    tsum, add = our_client.signature("res.tsum"), our_client.signature("res.add")
    m = xmap(tsum, [[1, 2], [3]]).delay()
    s = xstarmap(add, [(1, 2), (3, 4)]).delay()
    c = chunks(add, [(1, 2), (3, 4), (5, 6)], 2).delay()
    for r in (m, s, c):
        results_setup.remember(*all_ids(r))
    assert m.get(timeout=T) == [3, 3]
    assert s.get(timeout=T) == [3, 7]
    assert c.get(timeout=T) == [[3, 7], [11]]


def test_errbacks_in_both_forms(our_client: Client, results_setup: ResultsSetup) -> None:
    import redis

    errback_id = results_setup.new_id()
    failing = our_client.signature("res.fail", ("x",))
    failing.on_error(our_client.signature("res.errback_old", task_id=errback_id))
    failing.on_error(our_client.signature("res.errback_new"))
    r = failing.delay()
    results_setup.remember(r.id)
    with pytest.raises(ValueError):
        r.get(timeout=T)
    assert our_client.AsyncResult(errback_id).get(timeout=T) == f"errback:{r.id}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        note = wait_until(lambda: client.get(f"res-errback-{r.id}"), timeout=T)
        client.delete(f"res-errback-{r.id}")
    finally:
        client.close()
    assert note == b"ValueError:x"


def amqptool_result(setup: ResultsSetup, *args: str) -> subprocess.CompletedProcess[str]:
    return run_amqptool("-b", setup.broker_url, "result", *args, "--backend", setup.backend)


def test_progress_then_result_read_by_id_from_another_process(
    our_client: Client, results_setup: ResultsSetup
) -> None:
    import redis

    key = f"res-go-{results_setup.new_id()}"
    r = our_client.send_task("res.progress", (key,))
    results_setup.remember(r.id)
    wait_until(lambda: r.state == "PROGRESS", timeout=T, message="PROGRESS")
    seen = amqptool_result(results_setup, r.id, "--json")
    assert seen.returncode == 69
    assert json.loads(seen.stdout) == {"id": r.id, "state": "PROGRESS", "result": {"done": 50}}
    with pytest.raises(TaskTimeoutError):
        r.get(timeout=0.2)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.set(key, "1", ex=60)
        done = amqptool_result(results_setup, r.id, "--wait", "--timeout", str(T))
        client.delete(key)
    finally:
        client.close()
    assert (done.returncode, done.stdout) == (0, "done\n")


def test_a_failed_result_read_by_amqptool_result(
    our_client: Client, results_setup: ResultsSetup
) -> None:
    r = our_client.send_task("res.fail", ("seen elsewhere",))
    results_setup.remember(r.id)
    with pytest.raises(ValueError):
        r.get(timeout=T)
    proc = amqptool_result(results_setup, r.id)
    assert (proc.returncode, proc.stderr) == (1, "error: ValueError: seen elsewhere\n")


def test_forget_drops_the_stored_result(our_client: Client, results_setup: ResultsSetup) -> None:
    r = our_client.send_task("res.add", (5, 5))
    assert r.get(timeout=T) == 10
    r.forget()
    assert our_client.AsyncResult(r.id).state == "PENDING"


def test_the_result_of_a_celery_client_is_read_by_ours(
    our_client: Client, celery_app: Any, results_setup: ResultsSetup
) -> None:
    sent = celery_app.send_task("res.add", (20, 22))
    results_setup.remember(sent.id)
    assert our_client.AsyncResult(sent.id).get(timeout=T) == 42
