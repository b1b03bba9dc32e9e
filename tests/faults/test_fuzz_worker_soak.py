"""The malformed-message soak: 10 000 bad messages interleaved with good ones, one worker.

The worker must stay up, run every good task once, reject every bad message (to the queue's
dead-letter exchange) with exactly one clear log line each, and never run the pickle payload
(it would create a marker directory) unless ``--accept-content`` names pickle. A second, short
run with pickle accepted proves the tripwire is live.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pickle
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.harness import rabbitmqctl, unique, wait_until
from tests.load import DrillWorker, ResultTally, elapsed_since, record_figures, workers

pytestmark = [pytest.mark.slow]

BAD = 10_000
GOOD = 1_000
MARK = "x-relia"  # a header every soak message carries: "good-N" or "bad-N"
KIND = "x-relia-kind"  # and the bad ones: which kind of bad
# A task id that would forge a log record if logged raw.
FORGED = f"forged\n[{time.strftime('%Y-%m-%d')} 00:00:00,000: ERROR/MainProcess] all good "
# A log record (see worker/command.py), or a banner line: nothing a message could forge.
LOG_LINE = re.compile(
    r"^(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/\w+\] |  |relia-[0-9a-f]{8}@localhost )"
)


class Tripwire:
    """Unpickling this calls ``os.mkdir(path)``: proof that a pickle body was deserialized."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (os.mkdir, (self.path,))


def _task(queue: str, name: str = "relia.mark", args: Any = (1,)) -> Envelope:
    return encode_task(TaskMessage(task=name, args=list(args)), routing_key=queue)


def _props(ctype: str | None, **kw: Any) -> Properties:
    return Properties(content_type=ctype, content_encoding="utf-8", **kw)


def bad_messages(queue: str, marker: str) -> list[tuple[str, Callable[[int], Envelope]]]:
    """Kinds of bad message, each a function of a counter (for a little variety)."""

    def not_json(i: int) -> Envelope:
        env = _task(queue)
        env.body = b'[[1], {}, {"callbacks": ' + str(i).encode() + b",, }"
        return env

    def not_utf8(i: int) -> Envelope:
        env = _task(queue)
        env.body = b'[["\xff\xfe' + bytes([i % 256]) + b'"], {}, {}]'
        return env

    def wrong_shape(i: int) -> Envelope:
        env = _task(queue)
        shapes: list[Any] = [
            {"args": [1]},
            "a string",
            [1, 2],
            [[1], "kwargs", {}],
            [[1], {}, "embed"],
            [{"x": 1}, {}, {}],
            None,
            [],
        ]
        env.body = json.dumps(shapes[i % len(shapes)]).encode()
        return env

    def unknown_task(i: int) -> Envelope:
        return _task(queue, name=f"nosuch.task{i % 7}")

    def args_do_not_fit(i: int) -> Envelope:
        return _task(queue, args=list(range(2 + i % 3)))

    def bad_headers(i: int) -> Envelope:
        env = _task(queue)
        broken: list[dict[str, Any]] = [
            {"id": 12345},
            {"task": ["relia.mark"]},
            {"eta": "next tuesday"},
            {"expires": "never"},
            {"eta": "2026-13-45T99:00:00"},
            {"task": ""},
            {"id": f"{FORGED}{i}"},  # ... and the arguments do not fit (below)
            {"task": "relia.mark\r\nInjected: line"},
        ]
        env.headers.update(broken[i % len(broken)])
        if i % len(broken) == 6:
            env.body = b"[[1, 2, 3], {}, {}]"
        return env

    def wrong_content_type(i: int) -> Envelope:
        env = _task(queue)
        kinds = [
            ("text/plain", env.body),
            ("application/x-msgpack", b"\xc1\xc1\xc1"),
            ("application/x-yaml", b"key: [unclosed\n  - {"),
            ("application/octet-stream", env.body),
            (None, env.body),
            ("application/x-www-form-urlencoded", b"args=1"),
        ]
        ctype, body = kinds[i % len(kinds)]
        env.properties.content_type = ctype
        env.body = body
        return env

    def bad_compression(i: int) -> Envelope:
        env = _task(queue)
        env.headers["compression"] = ["application/x-gzip", "application/x-bz2", "zip"][i % 3]
        return env

    def not_a_task(i: int) -> Envelope:
        return Envelope(json.dumps({"hello": i}).encode(), _props("application/json"), "", queue)

    def protocol_one_without_id(i: int) -> Envelope:
        body = json.dumps({"task": "relia.mark", "args": [i], "kwargs": {}}).encode()
        return Envelope(body, _props("application/json"), "", queue)

    def pickle_tripwire(i: int) -> Envelope:
        env = _task(queue)
        env.body = pickle.dumps(Tripwire(marker))
        env.properties.content_type = "application/x-python-serialize"
        env.properties.content_encoding = "binary"
        return env

    def huge(i: int) -> Envelope:
        env = _task(queue)
        env.body = b"[[" + b"1," * 1_000_000 + b"], {}, {}]"  # 2 MB; the args do not fit
        return env

    return [
        ("not JSON", not_json),
        ("not UTF-8", not_utf8),
        ("wrong shape", wrong_shape),
        ("unknown task", unknown_task),
        ("arguments that do not fit", args_do_not_fit),
        ("bad headers", bad_headers),
        ("wrong content type", wrong_content_type),
        ("bad compression", bad_compression),
        ("not a task", not_a_task),
        ("protocol 1 without an id", protocol_one_without_id),
        ("pickle that would run code", pickle_tripwire),
        ("huge body", huge),
    ]


def odd_messages(queue: str, reply_to: str) -> list[tuple[str, Callable[[int], Envelope]]]:
    """Odd but acceptable: the codec tolerates these on purpose (as Celery does); they run."""

    def task(i: int, **headers: Any) -> Envelope:
        msg = TaskMessage(task="relia.mark", args=[i], reply_to=reply_to)
        env = encode_task(msg, routing_key=queue)
        env.headers.update(headers)
        return env

    def retries_not_a_number(i: int) -> Envelope:
        return task(i, retries="three")  # read as 0

    def timelimit_not_numbers(i: int) -> Envelope:
        return task(i, timelimit="soon")  # no limits

    def content_type_parameters(i: int) -> Envelope:
        env = task(i)
        env.properties.content_type = "application/json; charset=utf-8"
        return env

    def callbacks_not_a_list(i: int) -> Envelope:
        env = task(i)
        env.body = json.dumps([[i], {}, {"callbacks": "nope"}]).encode()
        return env

    def id_with_a_newline(i: int) -> Envelope:
        env = task(i)
        env.headers["id"] = f"{FORGED}{i}"
        env.properties.correlation_id = env.headers["id"]
        return env

    return [
        ("retries not a number", retries_not_a_number),
        ("timelimit not numbers", timelimit_not_numbers),
        ("content type parameters", content_type_parameters),
        ("callbacks not a list", callbacks_not_a_list),
        ("an id with a newline", id_with_a_newline),
    ]


HUGE_COUNT = 8
ODD = 500


def bad_kinds_in_order(queue: str) -> list[str]:
    """The kind of each bad message ``bad-N``, N = 0 .. BAD-1 (as :func:`soak_plan` makes them)."""
    kinds = [k for k, _ in bad_messages(queue, "") if k != "huge body"]
    return ["huge body" if n < HUGE_COUNT else kinds[n % len(kinds)] for n in range(BAD)]


def soak_plan(queue: str, marker: str, reply_to: str) -> Iterator[tuple[str, Envelope]]:
    """GOOD good tasks and BAD bad messages, shuffled (seeded), each marked in a header."""
    kinds = bad_messages(queue, marker)
    small = [k for k in kinds if k[0] != "huge body"]
    huge = next(k for k in kinds if k[0] == "huge body")
    odd = odd_messages(queue, reply_to)
    plan: list[tuple[str, int]] = [("good", n) for n in range(GOOD)]
    plan += [("bad", n) for n in range(BAD)] + [("odd", n) for n in range(ODD)]
    random.Random(8).shuffle(plan)
    for kind, n in plan:
        if kind == "odd":
            env = odd[n % len(odd)][1](n)
            env.headers[MARK] = f"odd-{n}"
            yield "good", env
            continue
        if kind == "good":
            msg = TaskMessage(task="relia.mark", args=[n], reply_to=reply_to)
            env = encode_task(msg, routing_key=queue)
            env.headers[MARK] = f"good-{n}"
            yield "good", env
            continue
        what, make = huge if n < HUGE_COUNT else small[n % len(small)]
        env = make(n)
        env.headers[MARK] = f"bad-{n}"
        env.headers[KIND] = what
        yield "bad", env


@pytest.fixture
def dead_letter_queue(broker_url: str, broker_vhost: str) -> Iterator[tuple[str, str]]:
    """A task queue whose rejected messages a policy dead-letters to ``<queue>.dlx``."""
    queue = unique("relia-soak")
    policy = unique("relia-dlx")
    pattern = f"^{queue}$"
    rabbitmqctl(
        *("set_policy", "-p", broker_vhost, "--apply-to", "queues", policy, pattern),
        json.dumps({"dead-letter-exchange": f"{queue}.dlx"}),
    )
    try:
        yield queue, f"{queue}.dlx"
    finally:
        rabbitmqctl("clear_policy", "-p", broker_vhost, policy, check=False)


class DeadLetters(ResultTally):
    """The dead-letter queue, consumed on a thread: ``statuses[mark]`` = x-death reasons."""

    def _on_result(self, env: Any) -> None:
        mark = env.headers.get(MARK)
        deaths = env.headers.get("x-death") or [{}]
        with self._lock:
            self.statuses[str(mark)].append(str(deaths[0].get("reason")))


def publish_plan(url: str, queue: str, plan: Iterator[tuple[str, Envelope]]) -> dict[str, str]:
    """Publish everything (queue declared as the worker does); returns mark -> good task id."""
    good: dict[str, str] = {}
    settings = BrokerSettings.from_url(url, environ={})
    with Connection(settings, name="relia-soak-publisher") as conn:
        ch = conn.channel()
        ch.exchange_declare(queue, "direct", durable=True)
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, queue, queue)
        for kind, env in plan:
            if kind == "good":
                good[env.headers[MARK]] = env.headers["id"]
            ch.publish(env)
        ch.queue_declare(queue, passive=True)
    return good


@pytest.mark.timeout(240)
def test_ten_thousand_malformed_messages_cost_nothing_but_their_own_rejection(
    broker_url: str, dead_letter_queue: tuple[str, str], tmp_path: Path
) -> None:
    queue, dlx = dead_letter_queue
    marker = tmp_path / "pickle-ran"
    started = time.monotonic()
    worker = DrillWorker(
        broker_url,
        queue,
        *("-P", "threads", "-c", "4", "--accept-content", "json,msgpack,yaml"),
        log_dir=tmp_path,
    )
    with (
        ResultTally(broker_url) as results,
        DeadLetters(broker_url, bind=(dlx, "")) as dead,
    ):
        good = publish_plan(broker_url, queue, soak_plan(queue, str(marker), results.queue))
        with workers(worker):
            results.wait_all(list(good.values()), timeout=120)
            with contextlib.suppress(AssertionError):  # what is missing is reported below
                wait_until(lambda: len(dead.statuses) >= BAD, 60, interval=0.2)
            assert worker.alive and worker.starts == 1
        dead_marks = dead.snapshot()
    kinds = {f"bad-{n}": what for n, what in enumerate(bad_kinds_in_order(queue))}
    lost = collections.Counter(kinds[m] for m in kinds if m not in dead_marks)
    assert not lost, f"bad messages not dead-lettered, by kind: {dict(lost)}"
    log = worker.output()
    rejected = [line for line in log.splitlines() if "Rejected " in line]

    assert not marker.exists(), "the pickle payload was deserialized without being accepted"
    assert results.duplicates() == 0 and not results.not_success()
    assert set(dead_marks) == {f"bad-{n}" for n in range(BAD)}, "every bad one, only bad ones"
    assert all(reasons == ["rejected"] for reasons in dead_marks.values())
    assert len(rejected) == BAD, "one log line per rejected message"
    assert max(len(line) for line in rejected) < 1000, "a log line never carries a body"
    forged = FORGED.split("\n", 1)[1][:30]
    assert not [ln for ln in log.splitlines() if ln.startswith(forged)], "a forged log record"
    stray = [ln for ln in log.splitlines() if ln and not LOG_LINE.match(ln)]
    assert not stray, f"lines that are not the worker's own: {stray[:5]}"
    assert "Traceback" not in log and "internal error" not in log
    record_figures(
        "malformed_soak",
        {
            "malformed_sent": BAD,
            "tasks_pushed": GOOD + ODD,
            "odd_but_valid": ODD,
            "bad_kinds": len(bad_messages(queue, str(marker))),
            "dead_lettered": len(dead_marks),
            "tasks_lost": len(results.missing(good.values())),
            "duplicate_results": results.duplicates(),
            "pickle_ran": marker.exists(),
            "seconds": elapsed_since(started),
        },
    )


def test_the_pickle_tripwire_fires_when_pickle_is_accepted(broker_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    queue = unique("relia-pickle")
    kinds = dict(bad_messages(queue, str(marker)))
    worker = DrillWorker(
        broker_url, queue, "-P", "solo", "--accept-content", "json,pickle", log_dir=tmp_path
    )
    with workers(worker):
        publish_plan(broker_url, queue, iter([("bad", kinds["pickle that would run code"](0))]))
        wait_until(marker.exists, 20, message="the pickle payload to run")
        wait_until(lambda: "Rejected " in worker.output(), 10, message="the rejection")
        assert worker.alive
