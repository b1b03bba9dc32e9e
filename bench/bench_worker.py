"""Tasks per second: our worker against a real Celery 5.7 worker and raw pika, same broker.

Everything runs in one fresh vhost of the local broker. Each run pre-loads a queue with a
``bench.stamp`` task, N trivial tasks and a second ``bench.stamp``, then starts the worker (a
real subprocess, as a user would run it) and waits for the two stamps' results: the rate is N
divided by the time between the stamps, both taken inside the worker, so start-up is not
counted. The messages are Celery 5.7 v2 task messages (built by our codec, byte-compatible).

Rows:

- raw pika: plain pika in its own process (none of our patches), ``basic_consume`` +
  ``basic_ack`` per message, same prefetch: what a straightforward pika consumer reaches;
- Celery 5.7 worker with ``-P solo``, ``-P threads`` and ``-P prefork``, results off;
- ours (``amqptool worker``) with each pool, task events on/off, results off/on.

"Results off" tasks have ``ignore_result`` (Celery clients still send ``reply_to``); "results
on" tasks get an rpc:// result each. Every worker gets the same prefetch multiplier and logs at
WARNING (no per-task log lines). Rounds are interleaved (every row once, then again), so a load
spike from another process hits all rows alike. Prints per-row medians over ``--repeats``
rounds and the ratios the worker issue targets: ours >= 3x Celery's best, >= 0.5x raw pika.

Run: ``.venv/bin/python -m bench.bench_worker [-n 5000] [-r 3]``. Never asserts on numbers.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from amqptool.codec.envelope import Envelope  # noqa: E402  # after the sys.path fix
from amqptool.codec.results import decode_exception  # noqa: E402
from amqptool.codec.serialization import loads  # noqa: E402
from amqptool.codec.tasks import TaskMessage, encode_task  # noqa: E402
from amqptool.settings import BrokerSettings  # noqa: E402
from amqptool.transport import Connection, nowait  # noqa: E402
from tests import harness  # noqa: E402


@dataclass(frozen=True)
class Case:
    label: str
    kind: str  # "raw" | "celery" | "ours"
    pool: str = "solo"
    concurrency: int = 1
    events: bool = False
    results: bool = False
    module: str = ""  # the task module for -A (default: each worker's own bench module)


def connect(url: str) -> Connection:
    return Connection(BrokerSettings.from_url(url, environ={}), name="bench-worker").connect()


def load_queue(
    url: str,
    queue: str,
    reply_to: str,
    n: int,
    results: bool,
    arguments: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Declare ``queue`` like Celery (with ``arguments``, e.g. a quorum queue) and fill it:
    stamp, N tasks, stamp. Returns the stamp ids."""
    with connect(url) as conn:
        ch = conn.channel()
        ch.exchange_declare(queue, "direct", durable=True)
        ch.queue_declare(queue, durable=True, arguments=arguments)
        ch.queue_bind(queue, queue, queue)
        ch.queue_declare(reply_to, durable=False, auto_delete=False)
        first, last = str(uuid.uuid4()), str(uuid.uuid4())

        def env(name: str, args: list[int], task_id: str, ignore: bool) -> Envelope:
            msg = TaskMessage(task=name, id=task_id, args=args, reply_to=reply_to)
            msg.ignore_result = ignore
            return encode_task(msg, routing_key=queue)

        nowait.publish(ch, env("bench.stamp", [], first, False))
        for i in range(n):
            if results:
                nowait.publish(ch, env("bench.add", [i, i], str(uuid.uuid4()), False))
            else:
                nowait.publish(ch, env("bench.noop", [], str(uuid.uuid4()), True))
            if i % 500 == 0:
                nowait.flush(conn)
        nowait.publish(ch, env("bench.stamp", [], last, False))
        nowait.flush(conn)
        while ch.queue_declare(queue, passive=True).message_count < n + 2:
            conn.sleep(0.05)
    return first, last


def wait_stamps(url: str, reply_to: str, ids: tuple[str, str], timeout: float) -> float:
    """Seconds between the two stamp tasks' results (read from ``reply_to``)."""
    stamps: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with connect(url) as conn:
        ch = conn.channel()
        for env in ch.iter_messages(reply_to, no_ack=True, inactivity_timeout=0.5):
            if env is not None:
                body = loads(env.body, env.properties.content_type)
                if body.get("task_id") in ids and body.get("status") == "SUCCESS":
                    stamps[body["task_id"]] = float(body["result"])
                elif body.get("status") == "FAILURE" and body.get("task_id") in ids:
                    raise RuntimeError(f"stamp failed: {decode_exception(body['result'])!r}")
            if len(stamps) == 2 or time.monotonic() > deadline:
                break
        ch.cancel_iter()
    if len(stamps) != 2:
        raise TimeoutError("the worker did not finish in time")
    return stamps[ids[1]] - stamps[ids[0]]


def raw_pika(url: str, queue: str, n: int, prefetch: int) -> float:
    """Plain pika in its own process (no amqptool patches); seconds from first to last."""
    script = str(ROOT / "bench" / "raw_pika_consumer.py")
    proc = subprocess.run(
        [sys.executable, script, url, queue, str(n + 2), str(prefetch)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(proc.stdout.strip())


@contextmanager
def worker_process(case: Case, url: str, queue: str, multiplier: int) -> Iterator[None]:
    env = dict(os.environ)
    env.update(AMQP_URL=url, BENCH_QUEUE=queue, BENCH_PREFETCH=str(multiplier))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CELERY_BROKER_URL", None)
    node = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    common = ["-Q", queue, "-P", case.pool, "-c", str(case.concurrency), "-n", node]
    if case.kind == "celery":
        module = case.module or "bench.worker_tasks_celery"
        cmd = [sys.executable, "-m", "celery", "-A", module, "worker"]
        cmd += [*common, "-l", "WARNING", "--without-mingle", "--without-gossip"]
        cmd += ["--prefetch-multiplier", str(multiplier)]
    else:
        module = case.module or "bench.worker_tasks_amqptool"
        cmd = [sys.executable, "-m", "worker", "-A", module, *common]
        cmd += ["--prefetch-multiplier", str(multiplier)]
    if case.events:
        cmd.append("-E")
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if proc.returncode not in (0, -signal.SIGTERM):
                tail = Path(log.name).read_text()[-500:]
                print(f"  ! {case.label}: exit {proc.returncode}: {tail}")
            Path(log.name).unlink(missing_ok=True)


def run_case(
    case: Case, url: str, n: int, multiplier: int, arguments: dict[str, Any] | None = None
) -> float:
    """Tasks per second for one row (``arguments``: the queue's, e.g. a quorum queue)."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    reply_to = f"bench-reply-{uuid.uuid4().hex[:8]}"
    ids = load_queue(url, queue, reply_to, n, case.results, arguments)
    try:
        if case.kind == "raw":
            seconds = raw_pika(url, queue, n, max(1, case.concurrency * multiplier))
        else:
            with worker_process(case, url, queue, multiplier):
                seconds = wait_stamps(url, reply_to, ids, timeout=max(120.0, n / 50))
    finally:
        with connect(url) as conn:
            ch = conn.channel()
            ch.queue_delete(queue)
            ch.queue_delete(reply_to)
            ch.exchange_delete(queue)
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--tasks", type=int, default=5000, help="tasks per run (5000)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="runs per row (3)")
    parser.add_argument(
        "-m", "--prefetch-multiplier", type=int, default=16, help="for every worker (16)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer rows (one pool each)")
    opts = parser.parse_args()
    cpus = os.cpu_count() or 1
    celery = [
        Case("celery solo", "celery", "solo", 1),
        Case(f"celery threads -c {2 * cpus}", "celery", "threads", 2 * cpus),
        Case(f"celery prefork -c {cpus}", "celery", "prefork", cpus),
    ]
    ours = [
        Case("ours threads -c 2", "ours", "threads", 2),
        Case("ours threads -c 2 -E", "ours", "threads", 2, events=True),
        Case("ours threads -c 2 results", "ours", "threads", 2, results=True),
        Case("ours threads -c 2 -E results", "ours", "threads", 2, events=True, results=True),
        Case("ours solo", "ours", "solo", 1),
        Case(f"ours prefork -c {cpus}", "ours", "prefork", cpus),
        Case(f"ours prefork -c {cpus} -E results", "ours", "prefork", cpus, True, True),
    ]
    if opts.quick:
        celery, ours = celery[:1], ours[:2]
    raw = Case("raw pika consume+ack", "raw", concurrency=2)
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    rates: dict[str, float] = {}
    print(
        f"{opts.tasks} trivial tasks per run, median of {opts.repeats}, prefetch multiplier "
        f"{opts.prefetch_multiplier}, {cpus} CPUs, vhost {vhost}\n"
    )
    try:
        cases = [raw, *celery, *ours]
        runs: dict[str, list[float]] = {c.label: [] for c in cases}
        for round_no in range(opts.repeats):  # interleaved: a load spike hits every row alike
            print(f"  round {round_no + 1}/{opts.repeats} ...", flush=True)
            for case in cases:
                runs[case.label].append(run_case(case, url, opts.tasks, opts.prefetch_multiplier))
        print()
        for case in cases:
            rates[case.label] = statistics.median(runs[case.label])
            shown = ", ".join(f"{r:,.0f}" for r in runs[case.label])
            print(f"  {case.label:<34} {rates[case.label]:>9,.0f} tasks/s   ({shown})")
    finally:
        harness.delete_vhost(vhost)
    best_celery = max(rates[c.label] for c in celery)
    best_ours_plain = max(rates[c.label] for c in ours if not c.results and not c.events)
    raw_rate = rates[raw.label]
    print()
    print(f"  best Celery                 {best_celery:>9,.0f} tasks/s")
    print(f"  raw pika consume+ack        {raw_rate:>9,.0f} msgs/s")
    for c in ours:
        r = rates[c.label]
        print(
            f"  {c.label:<34} {r / best_celery:5.1f}x Celery's best   {r / raw_rate:5.2f}x raw pika"
        )
    print(
        f"\n  targets: ours >= 3x Celery's best (best plain: "
        f"{best_ours_plain / best_celery:.1f}x), ours >= 0.5x raw pika "
        f"({best_ours_plain / raw_rate:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
