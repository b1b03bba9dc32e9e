"""Results through Redis: our worker against a real Celery 5.7 worker, same broker, same Redis.

Each run fills a fresh queue with N ``res.add`` tasks (Celery 5.7 v2 messages built by our
codec), starts the worker as a subprocess with its result backend on the local Redis, and waits
until all N results are stored (``celery-task-meta-<id>`` keys, read with MGET). The rate is the
results stored after the first ones divided by the time between the first and the last stored
result's ``date_done`` (written by the worker when it stores the result, as Celery does), so
start-up is not counted; results written in one batch share their ``date_done``, so all of the
first batch count as the start. Both workers run ``-P threads -c 4`` and ``-P solo``, log at
WARNING; rounds are interleaved. Prints medians, each round, and ours/Celery ratios (the median
ratio and each round's).

Run: ``.venv/bin/python -m bench.bench_results [-n 2000] [-r 3]``. Never asserts on numbers.

What the profile said (py-spy on our worker draining 10 000-20 000 pre-loaded ``res.add``,
``-P threads -c 4``, 2-core machine shared with the broker, Redis and other work):

- Before: each pool thread stored its own result, as Celery does: a ``GET`` (a stored SUCCESS is
  never overwritten) and then ``MULTI``/``SETEX``/``PUBLISH``/``EXEC``, two round trips per task
  on that thread's pooled connection. Wall-clock samples of the process: 50 % in
  ``ResultStore.store`` (26 % the ``GET``, 24 % the pipeline; 36 % of all samples blocked in the
  Redis socket read), 27 % the broker thread; of the samples holding the GIL, 25 % were the
  store (redis-py packing and parsing, four threads taking turns on the GIL for it). The task
  itself was under 1 %. The four threads mostly waited on Redis and on each other: 1 270-1 680
  results/s with 4 threads against 930 with one; the same work every task, so the wait, not
  the work, set the rate, and it moved with the machine's load (0.78x-2.6x of Celery's).
- After (``worker/pool/result_writer.py``): pool threads queue the document and go on; one
  writer thread per process stores whatever is queued in one ``MGET`` and one pipelined
  ``MULTI``/``SETEX``+``PUBLISH``.../``EXEC`` (the same keys, bytes, expiry and channels), then
  reports the jobs done, so the ack of an ``acks_late`` task still follows its store. The store
  is now ~10 % of the GIL samples (the writer), the pool threads ~4 %, and the broker thread
  (receiving, dispatching, acking: ~45 %) is what limits the rate: 2 200-3 300 results/s with
  ``-P threads -c 4`` in the same profiling runs, solo 1 200-1 400. Jobs whose result is queued
  no longer hold a slot of the pool's lookahead (before that change solo did not gain at all).
  The batch is written by one server-side script (``SETEX`` + ``PUBLISH`` each) rather than a
  ``MULTI`` pipeline: one reply instead of two per command, 12-26 us per result instead of
  40-50 in a 500-result micro run. Interleaved A/B on a loaded machine (load average 8-9,
  10 000 tasks, ``-P threads -c 4``): before 975 / 1 016 / 997 results/s, after 1 879 / 2 694
  / 2 569. Batches averaged ~13 results (781 for 10 000). What is left is the broker thread
  (69 % of the GIL samples: frames, decoding, dispatch, acks), the same for every backend.
- The solo rows are window-bound, not CPU-bound (issue #16, fifth pass, quiet machine): at the
  default prefetch multiplier (4) our solo stored 2,940-3,136 results/s, at 16 6,383-7,127 and at
  64 8,951-10,494 (three interleaved rounds each). A timeline of one cycle at prefetch 4
  (~1.25 ms for four tasks): the four tasks ran in ~110 us, then the writer's store and the
  broker thread took turns on the GIL (the ack left ~300 us after the first task started),
  and RabbitMQ's next four deliveries came ~570 us after the ack, while Redis and the writer
  shared the CPUs with it. Celery's solo runs at the same window (1,100-1,400 results/s).
- SQL results are not batched (``Backend.batches`` is False there): stores stay in the pool
  thread; an interleaved check (PostgreSQL, ``-P threads -c 4``, 1 000 tasks, 3 rounds) gave
  medians of 261 results/s before and 274 after: unchanged within the noise.
"""

from __future__ import annotations

import argparse
import json
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from amqptool.codec.tasks import TaskMessage, encode_task  # noqa: E402  # after the path fix
from amqptool.settings import BrokerSettings  # noqa: E402
from amqptool.transport import Connection  # noqa: E402
from tests import harness  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
CASES = [
    ("celery", "threads", 4),
    ("ours", "threads", 4),
    ("celery", "solo", 1),
    ("ours", "solo", 1),
]


def fill(url: str, queue: str, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with Connection(BrokerSettings.from_url(url, environ={}), name="bench-results").connect() as c:
        ch = c.channel()
        ch.exchange_declare(queue, "direct", durable=True)
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, queue, queue)
        for i, tid in enumerate(ids):
            msg = TaskMessage(task="res.add", id=tid, args=[i, 1], reply_to="bench-none")
            ch.publish(encode_task(msg, routing_key=queue))
    return ids


@contextmanager
def worker(kind: str, pool: str, conc: int, url: str, queue: str) -> Iterator[None]:
    env = dict(os.environ, AMQP_URL=url, PEER_QUEUE=queue, PEER_RESULT_BACKEND=REDIS_URL)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CELERY_BROKER_URL", None)
    common = ["-Q", queue, "-P", pool, "-c", str(conc), "-n", f"bres-{uuid.uuid4().hex[:6]}@h"]
    if kind == "celery":
        cmd = [sys.executable, "-m", "celery", "-A", "tests.peers.results_celery", "worker"]
        cmd += [*common, "-l", "WARNING", "--without-mingle", "--without-gossip"]
    else:
        cmd = [sys.executable, "-m", "worker", "-A", "tests.peers.results_tasks", *common]
        cmd += ["--result-backend", REDIS_URL, "-l", "WARNING"]
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
            Path(log.name).unlink(missing_ok=True)


def wait_results(ids: list[str], timeout: float) -> tuple[int, float]:
    """Wait for every result; (results stored after the first, seconds between them)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = [f"celery-task-meta-{i}" for i in ids]
    deadline = time.monotonic() + timeout
    try:
        while True:
            values = client.mget(keys)
            if all(v is not None for v in values):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(v is None for v in values)} results missing")
            time.sleep(0.2)
        done = sorted(datetime.fromisoformat(json.loads(v)["date_done"]) for v in values)
        client.delete(*keys)
    finally:
        client.close()
    # results stored in one batch share their date_done: those of the first one are the start
    first = sum(d == done[0] for d in done)
    return len(done) - first, (done[-1] - done[0]).total_seconds()


def run(kind: str, pool: str, conc: int, url: str, n: int) -> float:
    queue = f"bres-{uuid.uuid4().hex[:8]}"
    ids = fill(url, queue, n)
    with worker(kind, pool, conc, url, queue):
        counted, seconds = wait_results(ids, timeout=max(120.0, n / 20))
    return counted / seconds if seconds > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="tasks per run (default 2000)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench-results")
    url = harness.url_for(vhost)
    rates: dict[tuple[str, str, int], list[float]] = {c: [] for c in CASES}
    try:
        for _ in range(args.repeats):
            for case in CASES:
                rates[case].append(run(*case, url, args.n))
    finally:
        harness.delete_vhost(vhost)
    print(f"results stored in Redis, {args.n} res.add tasks, median of {args.repeats} rounds")
    med = {c: statistics.median(v) for c, v in rates.items()}
    for (kind, pool, conc), value in med.items():
        rounds = " ".join(f"{v:.0f}" for v in rates[(kind, pool, conc)])
        print(f"  {kind:7s} -P {pool:8s} -c {conc}: {value:8.0f} tasks/s  (rounds: {rounds})")
    for pool, conc in {(p, c) for _, p, c in CASES}:
        ratio = med[("ours", pool, conc)] / med[("celery", pool, conc)]
        each = zip(rates[("ours", pool, conc)], rates[("celery", pool, conc)], strict=True)
        per_round = " ".join(f"{o / c:.2f}x" for o, c in each)
        print(f"  ratio ours/celery (-P {pool} -c {conc}): {ratio:.2f}x  (rounds: {per_round})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
