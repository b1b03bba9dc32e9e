"""One suite, four runs: a real Celery 5.7 client against our worker and against a Celery
worker, each storing results in Redis and in PostgreSQL. Every test expects the same outcome
from all four (values, exception types, states, children, canvas, errbacks, progress)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.backend_support import REDIS_URL
from tests.harness import ROOT, wait_until
from tests.results_support import ResultsSetup, all_ids

pytestmark = pytest.mark.celery

T = 30  # seconds any one result may take


def sig(app: Any, name: str, *args: Any, **options: Any) -> Any:
    return app.signature(name, args=args, options=options)


def test_value_state_and_date(celery_app: Any, results_setup: ResultsSetup) -> None:
    r = celery_app.send_task("res.add", (2, 2))
    results_setup.remember(r.id)
    assert r.get(timeout=T) == 4
    assert r.state == "SUCCESS"
    assert r.date_done is not None
    assert not r.children  # [] on Redis, None on SQL (NULL column): the same for both


def test_exception_keeps_its_type(celery_app: Any, results_setup: ResultsSetup) -> None:
    r = celery_app.send_task("res.fail", ("bad thing",))
    results_setup.remember(r.id)
    with pytest.raises(ValueError, match="bad thing"):
        r.get(timeout=T)
    assert r.state == "FAILURE"
    assert "ValueError: bad thing" in r.traceback


def test_task_calling_a_task_lists_it_in_children(
    celery_app: Any, results_setup: ResultsSetup
) -> None:
    r = celery_app.send_task("res.spawn", (3,))
    child_id = r.get(timeout=T)
    results_setup.remember(r.id, child_id)
    assert celery_app.AsyncResult(child_id).get(timeout=T) == 6
    assert [c.id for c in r.children] == [child_id]
    meta = celery_app.backend.get_task_meta(child_id)
    assert meta.get("parent_id") == r.id or results_setup.kind == "sql"


def test_chain_and_its_children(celery_app: Any, results_setup: ResultsSetup) -> None:
    from celery import chain

    r = chain(sig(celery_app, "res.add", 1, 1), sig(celery_app, "res.add", 10)).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == 12
    assert r.parent.get(timeout=T) == 2
    assert [c.id for c in r.parent.children] == [r.id]


def test_chain_that_ends_in_a_group(celery_app: Any, results_setup: ResultsSetup) -> None:
    from celery import chain, group

    g = group(sig(celery_app, "res.add", 1), sig(celery_app, "res.add", 2))
    r = chain(sig(celery_app, "res.add", 1, 1), g).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == [3, 4]
    assert [type(c).__name__ for c in r.parent.children] == ["GroupResult"]


def test_group_saved_and_restored_by_id(celery_app: Any, results_setup: ResultsSetup) -> None:
    from celery import group

    r = group(sig(celery_app, "res.add", i, i) for i in range(3)).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == [0, 2, 4]
    r.save()
    restored = celery_app.GroupResult.restore(r.id)
    assert [x.id for x in restored.results] == [x.id for x in r.results]
    assert restored.get(timeout=T) == [0, 2, 4]
    restored.delete()


def test_chord(celery_app: Any, results_setup: ResultsSetup) -> None:
    from celery import chord

    header = [sig(celery_app, "res.add", i, i) for i in range(4)]
    r = chord(header, sig(celery_app, "res.tsum")).apply_async()
    results_setup.remember(*all_ids(r))
    assert r.get(timeout=T) == 12
    assert r.parent is None or r.parent.get(timeout=T) == [0, 2, 4, 6]


def test_chord_with_a_failed_header_fails_the_body(
    celery_app: Any, results_setup: ResultsSetup
) -> None:
    from celery import chord

    header = [sig(celery_app, "res.add", 1, 1), sig(celery_app, "res.fail", "no")]
    r = chord(header, sig(celery_app, "res.tsum")).apply_async()
    results_setup.remember(*all_ids(r))
    with pytest.raises(ValueError):
        r.get(timeout=T)  # Celery re-raises the failed header task's error first
    body = celery_app.AsyncResult(r.id)
    wait_until(lambda: body.state == "FAILURE", timeout=T, message="the chord body to fail")
    assert type(body.result).__name__ == "ChordError"
    assert "ValueError('no')" in str(body.result)


def test_map_starmap_and_chunks(celery_app: Any, results_setup: ResultsSetup) -> None:
    from celery.canvas import chunks, xmap, xstarmap

    m = xmap(sig(celery_app, "res.tsum"), [[1, 2], [3]], app=celery_app).apply_async()
    s = xstarmap(sig(celery_app, "res.add"), [(1, 2), (3, 4)], app=celery_app).apply_async()
    c = chunks(sig(celery_app, "res.add"), [(1, 2), (3, 4), (5, 6)], 2, app=celery_app)
    cr = c.apply_async()
    for r in (m, s, cr):
        results_setup.remember(*all_ids(r))
    assert m.get(timeout=T) == [3, 3]
    assert s.get(timeout=T) == [3, 7]
    assert cr.get(timeout=T) == [[3, 7], [11]]


def test_errback_old_form_gets_the_task_id(celery_app: Any, results_setup: ResultsSetup) -> None:
    errback_id = results_setup.new_id()
    errback = sig(celery_app, "res.errback_old", task_id=errback_id)
    r = celery_app.send_task("res.fail", ("x",), link_error=errback)
    results_setup.remember(r.id)
    with pytest.raises(ValueError):
        r.get(timeout=T)
    assert celery_app.AsyncResult(errback_id).get(timeout=T) == f"errback:{r.id}"


def test_errback_request_form_gets_request_and_exception(
    celery_app: Any, results_setup: ResultsSetup
) -> None:
    import redis

    r = celery_app.send_task("res.fail", ("oops",), link_error=sig(celery_app, "res.errback_new"))
    results_setup.remember(r.id)
    with pytest.raises(ValueError):
        r.get(timeout=T)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        note = wait_until(lambda: client.get(f"res-errback-{r.id}"), timeout=T)
        client.delete(f"res-errback-{r.id}")
    finally:
        client.close()
    assert note == b"ValueError:oops"


READER = """
import json, sys, time
from celery import Celery
app = Celery("reader", backend=sys.argv[1])
r = app.AsyncResult(sys.argv[2])
deadline = time.monotonic() + 30
while r.state != "PROGRESS" and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"state": r.state, "info": r.info}))
"""


def test_progress_is_read_from_another_process(
    celery_app: Any, results_setup: ResultsSetup
) -> None:
    import redis

    key = f"res-go-{results_setup.new_id()}"
    r = celery_app.send_task("res.progress", (key,))
    results_setup.remember(r.id)
    seen = subprocess.run(
        [sys.executable, "-c", READER, results_setup.backend, r.id],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(seen.stdout) == {"state": "PROGRESS", "info": {"done": 50}}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.set(key, "1", ex=60)
        assert r.get(timeout=T) == "done"
        client.delete(key)
    finally:
        client.close()
