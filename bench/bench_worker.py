"""Tasks per second: our worker against a real Celery 5.7 worker and raw pika, same broker.

Everything runs in one fresh vhost of the local broker. Each run pre-loads a queue with a
``bench.stamp`` task, N trivial tasks and a second ``bench.stamp``, then starts the worker (a
real subprocess, as a user would run it) and waits for the two stamps' results: the rate is N
divided by the time between the stamps, both taken inside the worker, so start-up is not
counted. The messages are Celery 5.7 v2 task messages (built by our codec, byte-compatible).

Rows (every one in each round, rounds interleaved, so a load spike hits every row alike):

- broker ceiling: plain pika in its own process (none of our patches), ``basic_consume`` with
  prefetch 1,000 and acks batched every 500 (``multiple=True``): what the broker delivers;
- Celery 5.7 worker with ``-P solo``, ``-P threads -c 2xCPUs`` and ``-P prefork -c CPUs``, results
  off; and the DEFAULT configuration: ``-P prefork -c CPUs -E`` with ``rpc://`` results;
- ours (``python -m worker``) with the same rows;
- the best pools again (Celery solo and threads, ours solo and threads) with the ceiling's
  window: prefetch 1,000 in all (the multiplier divided by the concurrency), so that the
  ceiling ratio can also be read with the window out of the way. The issue's targets are read
  from the rows at the common multiplier; the window rows are printed beside them.

"Results off" tasks have ``ignore_result`` (Celery clients still send ``reply_to``); "rpc"
rows run ``bench.add`` and every task's rpc:// result goes to the ``reply_to`` queue, which a
client reads while the worker runs. Every worker gets the same prefetch multiplier and logs at
WARNING (no per-task log lines). Printed: per-row medians and per-round values, then the issue's
ratios per round and their median: default ours / Celery's default (target >= 3x), best pool
ours / Celery's best pool of the same round (>= 5x in every round), ours / broker ceiling
(>= 0.6x).

Where the time goes (py-spy 0.4.3, ``py-spy record --subprocesses -r 200`` on the worker while
it ran 6,000 tasks from a pre-loaded queue; 2 shared CPUs at load average 10-15, so waits on
the other side of a pipe or socket are long):

- default configuration (prefork -c 2, -E, rpc:// results), first profile: the broker thread
  spent 22 % of its samples in ``PreforkPool.apply``, 17 % of them the pipe ``write`` of one
  pickled job (the system call that wakes the child); each child 25-31 % writing its report.
  The cost was not pickling but one write and one wake-up per task per direction. Batching the
  jobs of one loop turn into one write per child cut the broker thread's pipe writes from 17 %
  to 10 % of its samples.
- CPU per task per thread (``/proc/<pid>/task/*/stat``, a run of 20,000 tasks minus one of
  2,000 to take start-up out; the machine shared with other jobs, load average ~8, so every
  figure is high and moves by 10-20 % between runs). Before the change below: broker thread
  328 µs, the pool's reader thread 76 µs, the two children 93 + 87 µs (about 180 µs for each
  task a child runs, for ``add(x, y)``): 584 µs. A cProfile of the parent showed why the reader
  thread was no help: every report crossed threads (pipe read there, a pika wake-up socket
  write, the GIL handed over) and ``multiprocessing.Connection`` reads each message with two
  system calls behind several layers of checks; the pipe writes and socket sends of the broker
  thread took 0.5-1.6 ms of wall time each, because a process woken on a busy machine takes
  the CPU from the one that woke it.
- after: children write length-prefixed pickle frames on raw pipes (:mod:`worker.pool.frames`),
  the broker thread reads them in its own pika I/O loop (no reader thread), reports and jobs
  pickle as constructor calls instead of through ``dataclasses.fields()`` (a ``Started``
  report 5.1 -> 2.4 µs, a job 10.6 -> 6.6 µs to pickle, 12.8 -> 8.1 µs to unpickle), and a
  child arms no timer syscall for a task without a soft limit. Same measurement: broker
  thread 338 µs (it now also reads the pipes), no reader thread, children 76 + 65 µs: 478 µs
  in all (-18 %; the children's share -22 %, the parent's -16 %). In interleaved 8,000-task
  runs the worker's CPU per task (start-up included) was 698-749 µs before, 402-554 after.
  Tried and not kept: ``SCHED_BATCH`` children (so that waking one does not preempt the
  parent): no gain that interleaved runs could tell from noise. ``depth`` 4 (three jobs queued
  in a child instead of one) halves the children's voluntary context switches and cut the
  parent's CPU per task by 10-20 % in two interleaved runs, but lost on tasks/s in three more
  and would let a long task hold three jobs behind it instead of one: the default stays 2.
- the rpc:// result path (issue #16, second pass). Splitting the configuration (CPU per task,
  worker parent + children / RabbitMQ): no -E, no results 319 / 136 µs at 3.5k tasks/s; -E
  only 342 / 160 µs; rpc results only 487 / 253 µs: the results, not the events, are the
  expensive part. Per result the broker thread unpickled an Envelope and its Properties
  (7-12 µs), built pika's properties (3-5 µs) and encoded them with the frames (10-15 µs). Now
  the child encodes the properties (:mod:`amqptool.codec.wire`): the result crosses the pipe
  as four values (2.5 µs to unpickle) and the publisher writes its bytes as they are (frames
  3.3 µs), ~20 µs less per result in the parent, the child's extra encoding paid by its
  cheaper pickling. ``strace -c`` of the parent over 10,000 tasks also showed 12,134
  ``epoll_ctl`` next to 6,067 ``sendto`` (pika turns the socket's write watch on when its
  empty buffer gets data and off after the send); sending the buffer at the start of each poll
  instead cut them to 48, but it was reverted: a control reply queued right after the broker
  closed a channel was never sent, and its gain was inside the noise of every measurement.
  The machine was shared with two other benchmarks (load average 4.5-6.5), so before/after
  pairs of the result-path change could not be told apart from noise; Celery's ``-E rpc`` row
  moved between 188 and 856/s within one run. What is left per
  task in the parent: the syscalls (one socket send, one pipe write and one pipe read per
  ~2.8 tasks), decoding the delivery, the three task events, the report handling.
- best pool (ours ``solo`` and ``threads -c 2``, results off), re-profiled for issue #16 with
  py-spy and per-thread CPU read from /proc (2 shared CPUs, load average 7-9 while measuring):
  the worker used ~130-155 us of CPU per task (broker thread 100-130, pool thread 16-25), and
  ran 6-10 tasks per broker-loop turn (2,951 turns for 20,000 solo tasks, 1,884 for
  ``threads -c 2``). Of the broker thread, ~45 % was pika's per-frame layers: each of the three
  frames of a delivery became an object, the read buffer was copied after each one, callbacks
  were looked up, a content assembler ran, then BlockingChannel's event queue; ~12 % decoding
  (properties ~5 %, the JSON body ~5 %, of which half was ``json.loads`` building a decoder per
  call); ~7 % the socket write. With prefetch 16 the loop is stop-and-wait: the pool thread runs
  the queued window while the broker thread waits for the GIL, the acks leave in one
  ``basic.ack multiple`` and RabbitMQ idles until they arrive. Changes kept: a whole
  ``basic.deliver`` (method, header, one body frame) is decoded in one step and handed to pika's
  channel as its assembler would (:mod:`amqptool.transport.deliveries`); the Envelope is built
  without ``getattr`` defaults or a header copy; one shared JSON decoder; pool threads report
  ``Done(previous)`` with ``Started(next)`` in one batch; acks are flushed as soon as the reports
  are drained (before more work is handed out) and, when the pool is empty, written to the
  socket at once instead of on the next poll. Tried and dropped: a smaller hand-off window (the
  pool holding a quarter or half of the prefetch, so acks leave several times per window) adds
  a GIL hand-off per chunk and measured 30-40 % slower in same-pair runs on the loaded machine
  (solo 2.0k vs 3.4k tasks/s); writing acks at once even with a busy pool helped solo but cost
  ``threads -c 2`` in 3 of 4 interleaved rounds (the write releases the GIL to a pool thread,
  which keeps it until it blocks). After (same machine and load, 20,000 minus 2,000 tasks to
  remove start-up): CPU per task solo 156 -> 123 us, ``threads -c 2`` 143 -> 97 us; an
  interleaved A/B of 4 rounds x 5,000 tasks, the branch over main per round: solo 1.74x, 1.06x,
  1.17x, 1.06x, ``threads -c 2`` 2.03x, 1.11x, 1.07x, 1.58x. ``-r 3 --only ceiling --only solo
  --only threads`` (load ~8, Celery collapsing there): ours ``threads -c 2`` 4,624 / 4,167 /
  3,635 tasks/s, solo 4,324 / 2,886 / 2,103, ceiling 6,981 / 9,982 / 7,781, so 0.66x, 0.42x,
  0.47x of the ceiling (median 0.47x) and 2.34x, 2.82x, 2.52x Celery's best pool; a second run
  after merging main (ceiling 20,977 / 13,936 / 10,145, so the load varied): ours ``threads -c
  2`` 5,913 / 4,796 / 7,049, solo 4,646 / 2,776 / 3,228; 0.28x, 0.34x, 0.69x of the ceiling,
  2.03x, 2.48x, 4.21x Celery's best pool. Both targets still missed. What is left is mostly
  the stop-and-wait with a 16-message window (Celery's pool threads ack through kombu
  themselves, on a channel that is not thread-safe; ours hand the acks to the broker thread)
  and the header table of ~20 entries (~10 us per task).

- third pass (quiet machine, load average under 1.5): the default configuration's parent,
  py-spy at 250 Hz over 6 s of 20,000 tasks, has no cost above ~15 %: dispatching deliveries
  15 %, the ``task.multi`` JSON encoding of the events 11 % (the C encoder; the format stays the
  json module's), pipe writes and reads to the children 8 % each, the confirmed result publishes
  12 %. What would move it is the children publishing their results themselves (not done). The
  best pool's threads spend most samples waiting (pool thread in ``queue.get``, broker thread in
  ``poll``): the window of 16 per slot, not the CPU, sets the pace. Tried and not kept: a shorter
  GIL switch interval (``sys.setswitchinterval`` 1 ms and 0.5 ms against the default 5 ms, 3
  interleaved rounds twice): +17-18 % for solo and the default configuration in one set, -5 to
  +3 % in the other, and Redis results with solo 7-19 % slower in both.

- fourth pass (quiet machine): the default configuration's parent was not short of CPU.
  ``strace -c`` of the parent over ~8,000 tasks: about 2.2 tasks per loop turn (one pipe write,
  one pipe read, one socket send, two ``epoll_ctl`` per turn), and a sleep of 0.2 or 0.5 ms
  added before each turn (to let more reports gather) made it slower (three interleaved rounds
  each: 2,045-2,445 without, 1,796-1,953 with 0.2 ms, 1,752-1,786 with 0.5 ms). The children
  were waiting: with one job queued behind the running one, a child finishing a trivial task
  idles until the parent has read its report and written the next job. Jobs per child's pipe,
  three interleaved rounds of 4,000 tasks, ``-E`` rpc:// / plain: two 2,447 / 4,601, 2,394 /
  4,046, 2,869 / 4,735; four 3,954 / 6,928, 3,042 / 5,799, 2,634 / 5,835; six 4,083 / 5,984,
  3,465 / 5,710, 3,102 / 5,388; eight 3,440 / 6,992, 3,667 / 5,546, 3,600 / 7,177. The pool
  keeps six now (:data:`worker.pool.prefork.DEPTH`), with jobs taken back from behind a long
  task so depth costs no fairness (see that module).
- the best pools with the ceiling's window (the "window" rows): ours reach the ceiling
  (0.83-1.08x per round), so at the common multiplier it is the window, not the CPU per task,
  that keeps them at 0.4-0.6x. Running the broker loop on the solo pool thread between its jobs
  (no thread hand-over per window) was tried and dropped: a non-blocking turn of pika's loop
  costs about as much as the hand-over it saves (a turn per job: 4.0k tasks/s against 7.1k;
  per 16 jobs 8.3k at window 16 but 12k against 14k at window 1,000).
- fifth pass (quiet machine): a timeline of one worker (``solo``, timestamps taken in the
  process around pika's poll, each delivery, the dispatch, each job and each ack; 20,000 tasks
  pre-loaded) shows the loop at a small window is strictly stop-and-wait. At prefetch 4 one
  cycle took ~620 us: ~280 us from the ack leaving to the first of the next deliveries being
  read (RabbitMQ's turn-around, on the other CPU), ~100 us decoding four deliveries, ~85 us
  until the pool thread ran after the hand-off, ~50 us for the four tasks, ~60 us until the
  broker thread woke again, ~50 us of reports and acks. Window 1,000 hides the turn-around
  (the decode and the tasks are then ~47 us per task in all). Tried, no gain in interleaved
  runs at window 16: a GIL switch interval of 0.05, 0.1, 0.2 and 0.5 ms (the broker thread
  would get the GIL sooner after its wake-up); acking a job when it is handed to an idle pool
  thread rather than when it starts, and even acking every job at dispatch (not safe: an upper
  bound): 8.3-12.8k tasks/s against 8.7-12.1k. At window 1,000 (py-spy) the broker thread's
  largest share is the ~20-entry header table of each task message (~20 % of its samples)
  and the task-message decode (~11 %).

Run: ``.venv/bin/python -m bench.bench_worker [-n 3000] [-r 3] [--only LABEL]``.
Never asserts on numbers.
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

CEILING = "broker ceiling (pika, prefetch 1000, ack/500)"
CEILING_PREFETCH = 1000
CEILING_ACK_EVERY = 500
W = CEILING_PREFETCH  # the window of the "window" rows: the ceiling's


@dataclass(frozen=True)
class Case:
    label: str
    kind: str  # "raw" | "celery" | "ours"
    pool: str = "solo"
    concurrency: int = 1
    events: bool = False
    results: bool = False
    module: str = ""  # the task module for -A (default: each worker's own bench module)
    window: int | None = None  # the prefetch window in all (None: concurrency x the multiplier)

    def multiplier(self, default: int) -> int:
        return default if self.window is None else max(1, self.window // self.concurrency)


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


def raw_pika(url: str, queue: str, n: int) -> float:
    """Plain pika in its own process (no amqptool patches); seconds from first to last."""
    script = str(ROOT / "bench" / "raw_pika_consumer.py")
    args = [str(n + 2), str(CEILING_PREFETCH), str(CEILING_ACK_EVERY)]
    proc = subprocess.run(
        [sys.executable, script, url, queue, *args],
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
            seconds = raw_pika(url, queue, n)
        else:
            with worker_process(case, url, queue, case.multiplier(multiplier)):
                seconds = wait_stamps(url, reply_to, ids, timeout=max(120.0, n / 50))
    finally:
        with connect(url) as conn:
            ch = conn.channel()
            ch.queue_delete(queue)
            ch.queue_delete(reply_to)
            ch.exchange_delete(queue)
    return n / seconds


def cases(cpus: int) -> list[Case]:
    return [
        Case(CEILING, "raw"),
        Case("celery solo", "celery", "solo", 1),
        Case(f"celery threads -c {2 * cpus}", "celery", "threads", 2 * cpus),
        Case(f"celery prefork -c {cpus}", "celery", "prefork", cpus),
        Case(f"celery prefork -c {cpus} -E rpc", "celery", "prefork", cpus, True, True),
        Case("ours solo", "ours", "solo", 1),
        Case(f"ours threads -c {cpus}", "ours", "threads", cpus),
        Case(f"ours prefork -c {cpus}", "ours", "prefork", cpus),
        Case(f"ours prefork -c {cpus} -E rpc", "ours", "prefork", cpus, True, True),
        # the best pools again with the ceiling's window: what is left when the window is not
        # the limit (the targets are read from the rows above, at one multiplier)
        Case(f"celery solo, window {W}", "celery", "solo", 1, window=W),
        Case(f"celery threads -c {2 * cpus}, window {W}", "celery", "threads", 2 * cpus, window=W),
        Case(f"ours solo, window {W}", "ours", "solo", 1, window=W),
        Case(f"ours threads -c {cpus}, window {W}", "ours", "threads", cpus, window=W),
    ]


def report(rows: list[Case], runs: dict[str, list[float]]) -> None:
    """Medians, per-round values and the issue's ratios (per round and of the medians)."""
    med = {c.label: statistics.median(runs[c.label]) for c in rows}
    for c in rows:
        shown = ", ".join(f"{r:,.0f}" for r in runs[c.label])
        print(f"  {c.label:<38} {med[c.label]:>9,.0f} /s   rounds: {shown}")
    rounds = len(next(iter(runs.values())))

    def best(kind: str, i: int, windowed: bool = False) -> tuple[str, float]:
        plain = [c for c in rows if c.kind == kind and not c.events and not c.results]
        plain = [c for c in plain if (c.window is not None) == windowed] or plain
        top = max(plain, key=lambda c: runs[c.label][i])
        return top.label, runs[top.label][i]

    def pair(kind: str) -> Case | None:
        return next((c for c in rows if c.kind == kind and c.events and c.results), None)

    def line(name: str, target: float, per_round: list[float], every: bool = False) -> None:
        """``every``: the target is for every round, not only for the median."""
        shown = ", ".join(f"{r:.2f}x" for r in per_round)
        median = statistics.median(per_round)
        held = "holds" if (min(per_round) if every else median) >= target else "MISSED"
        goal = f">= {target}x" + (" in every round" if every else " (median)")
        print(f"  {name:<40} median {median:5.2f}x  rounds: {shown}  target {goal}: {held}")

    print()
    ours_d, celery_d = pair("ours"), pair("celery")
    if ours_d and celery_d:
        line(
            "default (prefork -E rpc) ours / Celery",
            3,
            [runs[ours_d.label][i] / runs[celery_d.label][i] for i in range(rounds)],
        )
    plain = {c.kind for c in rows if not c.events and not c.results and c.window is None}
    if {"celery", "ours"} <= plain:
        print(
            "  best pools per round: "
            + "; ".join(f"{best('ours', i)[0]} vs {best('celery', i)[0]}" for i in range(rounds))
        )
        line(
            "best pool ours / Celery's best pool",
            5,
            [best("ours", i)[1] / best("celery", i)[1] for i in range(rounds)],
            every=True,
        )
        if CEILING in runs:
            ceil = runs[CEILING]
            line(
                "best pool ours / broker ceiling",
                0.6,
                [best("ours", i)[1] / ceil[i] for i in range(rounds)],
            )
            if ours_d:
                line(
                    "default ours / broker ceiling",
                    0.6,
                    [runs[ours_d.label][i] / ceil[i] for i in range(rounds)],
                )
    windowed = {c.kind for c in rows if c.window is not None}
    if {"celery", "ours"} <= windowed:
        print(f"  with the ceiling's window ({W}) for every best-pool row:")
        line(
            "  best pool ours / Celery's best pool",
            5,
            [best("ours", i, True)[1] / best("celery", i, True)[1] for i in range(rounds)],
            every=True,
        )
        if CEILING in runs:
            line(
                "  best pool ours / broker ceiling",
                0.6,
                [best("ours", i, True)[1] / runs[CEILING][i] for i in range(rounds)],
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--tasks", type=int, default=3000, help="tasks per run (3000)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "-m", "--prefetch-multiplier", type=int, default=16, help="for every worker (16)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="rows whose label contains this (repeatable)"
    )
    opts = parser.parse_args()
    cpus = os.cpu_count() or 1
    rows = [c for c in cases(cpus) if not opts.only or any(o in c.label for o in opts.only)]
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    print(
        f"{opts.tasks} trivial tasks per run, {opts.repeats} interleaved rounds, prefetch "
        f"multiplier {opts.prefetch_multiplier}, {cpus} CPUs, vhost {vhost}\n"
    )
    runs: dict[str, list[float]] = {c.label: [] for c in rows}
    try:
        for round_no in range(opts.repeats):  # interleaved: a load spike hits every row alike
            print(f"  round {round_no + 1}/{opts.repeats} ...", flush=True)
            for case in rows:
                runs[case.label].append(run_case(case, url, opts.tasks, opts.prefetch_multiplier))
    finally:
        harness.delete_vhost(vhost)
    print()
    report(rows, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
