"""The monitor's throughput and memory, beside Celery's own event machinery, in one run.

Three measurements, on a throw-away vhost of the local broker:

1. **State ingest** (pure, no broker): the same realistic event stream (task lifecycles with
   5 % failures and heartbeats) folded by ``amqptool.monitor.core.state.MonitorState`` and by
   Celery's ``celery.events.state.State`` (both bounded to 10 000 tasks), interleaved rounds;
   medians and the ratio (target >= 3x).
2. **End to end** (events/s through the consumer + state): a *separate process* publishes the
   events to ``celeryev`` (with py-amqp, the client Celery's workers use), once as ``task.multi``
   batches of 10 events (how a busy Celery worker sends task events) and once as one message
   per event; the monitor's ``EventFeed`` + ``MonitorState`` consume them, and so does Celery's
   ``EventReceiver`` + ``State`` on the same stream in the same run. Target >= 20 000 events/s.
3. **Memory**: resident set size of a fresh process after folding 1 000 000 tasks (3 000 000
   events) with the default bound, ours and Celery's (``State(max_tasks_in_memory=10000)``).

Run: ``.venv/bin/python -m bench.bench_monitor [--quick]`` (or ``python bench/bench_monitor.py``).
Prints medians and ratios; never asserts on numbers; not collected by pytest.

Where the time goes (profiled for issue #16 with cProfile and py-spy on a 2-core machine shared
with other jobs, so figures are CPU-time medians of interleaved runs, ours beside Celery's):

* **The fold, before** (``MonitorState.apply_many`` on 30 000 task lifecycles): about half in
  ``_task_event``'s own bytecode; ~15 % in the totals (``Totals.record`` through ``_count`` and
  ``Runtimes.add``, a call chain, a lock and a ``math.log`` per event) and ~6 % in
  ``History.finished``, all done per event; ~6 % in ``field_value``, called for every copied
  field (300 000 calls, most of them ``None``, ints or short clean text); a regex search per
  string (334 000 ``re.search`` calls for the control-character check); the cyclic GC ~20 %
  (``gc.disable()`` gave +25-35 %; the state holds 10 000 tasks of slot objects, lists and
  tuples). Ratio to Celery's ``State`` by CPU time: 2.7-2.9x (wall-clock ~2.6x quiet).
* **The fold, after**: a batch shares one ``now``, so its totals, history and throughput counts
  are collected in a dict and handed over once per batch (same label-bound order, same runtime
  order; ``tests/unit/test_monitor_fold_batch.py`` folds random streams both ways and
  compares); ``str.isprintable()`` (C, one pass) proves a string safe before the precise regex
  (every character the cleaner escapes is non-printable, tested), so cleaning still happens at
  fold time on every string but costs a method call on clean text; short printable text and
  ``None`` skip ``field_value``; one ``TASK_SPEC`` lookup per event replaces four table
  lookups; ``apply`` and ``apply_many`` share one loop (no per-event call), and a task event's
  implicit worker heartbeat is inlined. On 20 000 lifecycles (CPU time, medians of 3
  interleaved processes each for main and this code): ours 118 000 -> 155 000 events/s, ratio
  to Celery 2.9x -> 4.3x. This module's full run (50 000 lifecycles in one batch) gave 3.1x and
  3.4x wall clock, 3.2x and 3.3x CPU time, in two runs on a machine at load average ~8.
* **The feed** (``EventFeed`` thread, ``task.multi`` end to end, py-spy): the fold ~46 % before
  (~35 % after), JSON decoding ~24 % (C scanner; ``json.loads`` with an ``object_hook`` also
  built a ``JSONDecoder`` per call, ~1.5 %: one decoder is reused now), pika's frame and
  callback machinery ~25 % (frame reader, ``_process_callbacks``, ``name_or_value``, timers),
  building the ``Envelope`` ~2 %. A pre-check to skip the ``object_hook`` when no
  ``"__type__"`` is in the body cost more than the hook saves on 10-event bodies (not done).
  End to end, the publisher, the broker and the consumer share the two cores, so the events/s
  depend on the load of the machine; ours used about half the CPU of Celery's receiver for the
  same stream.
* **The feed, re-profiled after the one-step delivery path** (``transport/deliveries.py``;
  py-spy at 250 Hz on the feed thread, two ``task.multi`` runs of 30 000 lifecycles): the fold
  ~47 % (``_task_event``'s own bytecode 31 %), JSON decoding ~26 % (the C scanner 25 %), and
  what is left of pika ~15 % (the poll loop, socket reads, our ``deliver`` 6 %, properties
  2.7 %, ``BlockingChannel``'s deferred dispatch ~1 %); the ``Envelope`` 1.4 %. Per-message work
  outside JSON is now ~4 %: a raw (Envelope-free) consumer, an ``object_hook``-free decode or a
  different hand-off could save at most that, within this machine's noise (not done; the feed
  is ``no_ack``, so prefetch and ack batching do not apply). The GC did show: decoded event
  dicts trigger a young collection every 700 allocations, and the older generations are
  rescanned with the 10 000-task state and everything imported. ``EventFeed`` now applies
  ``amqptool.monitor.gctune.ingest_gc`` while it runs (one collection, ``gc.freeze()`` of what
  exists at start, gen0 threshold 10 000; restored when the last feed stops, so Celery's side of
  this bench, run after ours in the same process, has the default GC). JSON + fold alone (CPU,
  5 interleaved rounds): default 73 000 events/s, gen0 10 000 78 000, freeze + gen0 10 000
  86 000, ``gc.disable()`` 82 000, gen0 50 000 71 000 (nothing). End to end (``task.multi``,
  4 interleaved rounds, feed-thread CPU time / wall clock, medians): tuning off 59 500 / 31 800
  events/s, on 70 100 / 42 100. Part 2 before (main, same machine, same-run ratios): 2.1x,
  2.3x, 2.2x, 2.6x (the brief's last run: 1.6x). After, this module's full run twice (load
  average ~3.5, medians of 3 rounds): ours 51 800 / Celery 12 100 events/s = 4.3x (Celery lost
  600 events to the queue TTL in one round), and ours 61 000 / Celery 22 800 = 2.7x (nothing
  lost). Ours still lags the publisher (~90 000 events/s offered), so the ratio moves with how
  much CPU the broker and publisher leave; the remaining cost is the fold and the C JSON
  scanner, not the feed's plumbing.
* **The fold, line by line** (``line_profiler`` on 20 000 lifecycles; no line above 6 %): the
  biggest were creating the ``Task`` (5.9 %), ``field_value`` for the ``retries`` and
  ``runtime`` of every task (4.2 %, 40 000 calls) and settling the batch (4.2 %). ``retries``
  that is an int and ``runtime`` that is a finite float >= 0 are now copied as they are (what
  ``field_value`` returned for them; tested against it for odd values), and the per-event
  ``event_count`` and type-count updates do one dict lookup less. Fold alone, CPU time, two
  A/B pairs (7 rounds of 30 000 lifecycles each, medians): 221k against 209k and 235k against
  220k events/s (+5-7 %), one pair +2 %. End to end the gain is inside the noise (medians of
  three rounds, new against old, interleaved: 75.8k / 73.6k, 81.9k / 72.0k, 71.5k / 77.6k).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from amqptool.monitor.core.state import MonitorState  # noqa: E402  # after the sys.path fix
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus  # noqa: E402  # after sys.path
from amqptool.settings import BrokerSettings  # noqa: E402  # after the sys.path fix

T0 = 1_795_255_000.0


# --------------------------------------------------------------------------- the event stream


def stream(tasks: int, *, start: int = 0, workers: int = 4) -> Iterator[dict[str, Any]]:
    """Task lifecycles as Celery 5.7 workers send them; 1 in 20 fails; a heartbeat every 50."""
    clock = start * 3
    for i in range(start, start + tasks):
        host = f"w{i % workers}@bench"
        uuid = f"{i:08x}-6d2c-4d9e-9a4e-{i:012x}"
        t = T0 + i * 0.001
        clock += 1
        yield {
            "hostname": host,
            "utcoffset": 0.0,
            "pid": 1000 + i % workers,
            "clock": clock,
            "uuid": uuid,
            "name": "bench.add",
            "args": f"({i}, 2)",
            "kwargs": "{}",
            "root_id": uuid,
            "parent_id": None,
            "retries": 0,
            "eta": None,
            "expires": None,
            "timestamp": t,
            "type": "task-received",
            "local_received": t,
        }
        clock += 1
        yield {
            "hostname": host,
            "utcoffset": 0.0,
            "pid": 1000 + i % workers,
            "clock": clock,
            "uuid": uuid,
            "timestamp": t + 0.0002,
            "type": "task-started",
            "local_received": t + 0.0002,
        }
        clock += 1
        end: dict[str, Any] = {
            "hostname": host,
            "utcoffset": 0.0,
            "pid": 1000 + i % workers,
            "clock": clock,
            "uuid": uuid,
            "timestamp": t + 0.0005,
            "local_received": t + 0.0005,
        }
        if i % 20 == 7:
            end.update(
                type="task-failed",
                exception="ValueError('boom')",
                traceback="Traceback (most recent call last):\n  ...\nValueError: boom\n",
            )
        else:
            end.update(type="task-succeeded", result=str(i + 2), runtime=0.0003)
        yield end
        if i % 50 == 0:
            yield {
                "hostname": host,
                "utcoffset": 0.0,
                "pid": 1000 + i % workers,
                "clock": clock,
                "freq": 2.0,
                "active": 1,
                "processed": i,
                "loadavg": [0.5, 0.4, 0.3],
                "sw_ident": "py-celery",
                "sw_ver": "5.7.0",
                "sw_sys": "Linux",
                "timestamp": t,
                "type": "worker-heartbeat",
                "local_received": t,
            }


# --------------------------------------------------------------------------- 1. pure ingest


def ingest_ours(events: list[dict[str, Any]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to fold ``events``."""
    state = MonitorState()
    start, cpu = time.perf_counter(), time.process_time()
    state.apply_many(events, T0)
    return time.perf_counter() - start, time.process_time() - cpu


def ingest_celery(events: list[dict[str, Any]]) -> tuple[float, float]:
    from celery.events.state import State

    state = State(max_tasks_in_memory=10_000)
    event = state.event
    start, cpu = time.perf_counter(), time.process_time()
    for e in events:
        event(e)
    return time.perf_counter() - start, time.process_time() - cpu


def bench_ingest(tasks: int, rounds: int) -> None:
    base = list(stream(tasks))
    n = len(base)
    ours: list[tuple[float, float]] = []
    celery: list[tuple[float, float]] = []
    for _ in range(rounds):
        # Celery's State writes into the event dicts: each side gets fresh shallow copies.
        ours.append(ingest_ours([dict(e) for e in base]))
        celery.append(ingest_celery([dict(e) for e in base]))
    print(f"1. state ingest: {n} events ({tasks} tasks), {rounds} interleaved rounds")
    # Wall clock is the figure; CPU time (both sides measured the same way) is printed beside
    # it because on a shared machine the wall clock also counts the time others ran.
    mo, mc = (statistics.median(n / w for w, _ in rows) for rows in (ours, celery))
    co, cc = (statistics.median(n / c for _, c in rows) for rows in (ours, celery))
    print(f"   amqptool MonitorState      : median {mo:10,.0f} events/s  (CPU time: {co:,.0f})")
    print(f"   celery.events.state.State  : median {mc:10,.0f} events/s  (CPU time: {cc:,.0f})")
    ratio = f"{mo / mc:.1f}x  (CPU time {co / cc:.1f}x)"
    print(f"   ratio ours/celery          : {ratio}  (target >= 3x)")


# --------------------------------------------------------------------------- 2. end to end


def publisher_main(url: str, mode: str, tasks: int) -> int:
    """Child process: encode everything first, wait for 'go' on stdin, publish, report."""
    import amqp

    ep = BrokerSettings.from_url(url).primary
    events = list(stream(tasks))
    for e in events:
        del e["local_received"]
    bodies: list[tuple[str, str]] = []
    if mode == "multi":
        task_events = [e for e in events if e["type"].startswith("task-")]
        other = [e for e in events if not e["type"].startswith("task-")]
        for i in range(0, len(task_events), 10):
            bodies.append(("task.multi", json.dumps(task_events[i : i + 10])))
        bodies.extend((e["type"].replace("-", "."), json.dumps(e)) for e in other)
    else:
        bodies = [(e["type"].replace("-", "."), json.dumps(e)) for e in events]
    conn = amqp.Connection(
        f"{ep.host}:{ep.port}", userid=ep.userid, password=ep.password(), virtual_host=ep.vhost
    )
    conn.connect()
    channel = conn.channel()
    print(f"ready {len(events)} {len(bodies)}", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for routing_key, body in bodies:
        channel.basic_publish(
            amqp.Message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=1,
                priority=0,
                application_headers={"hostname": "w0@bench"},
            ),
            exchange="celeryev",
            routing_key=routing_key,
        )
    elapsed = time.perf_counter() - start
    conn.close()
    print(f"published {elapsed:.4f}", flush=True)
    return 0


class Publisher:
    def __init__(self, url: str, mode: str, tasks: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_monitor", "--publish", url, mode, str(tasks)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        _, events, messages = self.proc.stdout.readline().split()
        self.events, self.messages = int(events), int(messages)

    def go(self) -> float:
        assert self.proc.stdin is not None
        started = time.perf_counter()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return started

    def finish(self) -> float:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = self.proc.stdout.readline().split()
        self.proc.wait(30)
        self.proc.stdin.close()
        self.proc.stdout.close()
        return float(line[1]) if line and line[0] == "published" else float("nan")


def e2e_ours(url: str, mode: str, tasks: int) -> tuple[float, int, int, float]:
    """(events/s, events seen, events sent, publisher msgs/s) through EventFeed + MonitorState."""
    pub = Publisher(url, mode, tasks)
    state = MonitorState()
    seen = 0
    last = 0.0
    done = threading.Event()

    def on_batch(batch: FeedBatch) -> None:
        nonlocal seen, last
        state.apply_many(batch.events, time.time())
        seen += len(batch.events)
        last = time.perf_counter()
        if seen >= pub.events:
            done.set()

    ready = threading.Event()

    def on_status(status: FeedStatus) -> None:
        if status.connected:
            ready.set()

    feed = EventFeed(BrokerSettings.from_url(url), on_batch, on_status, ask_heartbeat=False)
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    ready.wait(10)
    started = pub.go()
    done.wait(60)
    if not done.is_set():  # some were lost (queue TTL): wait for the stream to go quiet
        quiet = seen
        while True:
            time.sleep(1.0)
            if seen == quiet:
                break
            quiet = seen
    pub_time = pub.finish()
    feed.stop()
    thread.join(10)
    return seen / (last - started), seen, pub.events, pub.messages / pub_time


def e2e_celery(url: str, mode: str, tasks: int) -> tuple[float, int, int, float]:
    """The same through Celery's EventReceiver + State."""
    from celery import Celery

    pub = Publisher(url, mode, tasks)
    app = Celery("bench-monitor", broker=url)
    state = app.events.State(max_tasks_in_memory=10_000)
    seen = 0
    last = 0.0
    ready = threading.Event()
    with app.connection_for_read() as conn:
        recv = app.events.Receiver(conn, handlers={"*": state.event})

        def on_event(event: dict[str, Any]) -> None:
            nonlocal seen, last
            state.event(event)
            seen += 1
            last = time.perf_counter()
            if seen >= pub.events:
                recv.should_stop = True

        recv.handlers = {"*": on_event}
        original = recv.on_consume_ready

        def consume_ready(*args: Any, **kwargs: Any) -> None:
            original(*args, **kwargs)
            ready.set()

        recv.on_consume_ready = consume_ready  # type: ignore[method-assign]  # bench hook
        thread = threading.Thread(
            target=lambda: recv.capture(limit=None, timeout=None, wakeup=False), daemon=True
        )
        thread.start()
        ready.wait(10)
        started = pub.go()
        deadline = time.monotonic() + 60
        quiet_since = time.monotonic()
        previous = -1
        while thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
            if seen != previous:
                previous, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since > 2.0 and seen > 0:
                break  # lost some (queue TTL): stop waiting
        recv.should_stop = True
        thread.join(10)
    pub_time = pub.finish()
    app.close()
    return seen / (last - started), seen, pub.events, pub.messages / pub_time


def consumer_alone(url: str, tasks: int) -> float:
    """events/s draining a pre-loaded queue of one-event messages (no publisher competing).

    The same per-message work as the feed (decode_events, local_received, a batched fold), on a
    plain queue, because the monitor's own queue drops messages older than 5 s by design.
    """
    from amqptool.codec.events import decode_events
    from amqptool.transport import Connection

    pub = Publisher(url, "single", tasks)
    settings = BrokerSettings.from_url(url)
    queue = f"bench-monitor-{os.getpid()}"
    with Connection(settings) as conn:
        channel = conn.channel()
        channel.exchange_declare("celeryev", "topic", durable=True)
        channel.queue_declare(queue, auto_delete=False)
        channel.queue_bind(queue, "celeryev", "#")
        pub.go()
        pub.finish()
        state = MonitorState()
        batch: list[dict[str, Any]] = []
        seen = 0

        def on_message(env: Any) -> None:
            nonlocal seen
            now = time.time()
            for event in decode_events(env):
                event["local_received"] = now
                batch.append(event)
            seen += 1

        start = time.perf_counter()
        channel.consume(queue, on_message, no_ack=True)
        while seen < pub.messages:
            conn.process_events(time_limit=0.1)
            state.apply_many(batch, time.time())
            batch.clear()
        elapsed = time.perf_counter() - start
        channel.queue_delete(queue)
    return pub.events / elapsed


def bench_e2e(url: str, tasks: int, rounds: int) -> None:
    print(f"\n2. end to end: a separate process publishes {tasks} task lifecycles to celeryev")
    for mode, label in (("multi", "task.multi batches of 10"), ("single", "one event per message")):
        rows: dict[str, list[tuple[float, int, int, float]]] = {"ours": [], "celery": []}
        for _ in range(rounds):
            rows["ours"].append(e2e_ours(url, mode, tasks))
            rows["celery"].append(e2e_celery(url, mode, tasks))
        print(f"   {label}:")
        medians = {}
        for who, name in (
            ("ours", "amqptool EventFeed+State  "),
            ("celery", "celery Receiver+State    "),
        ):
            rates = [r[0] for r in rows[who]]
            medians[who] = statistics.median(rates)
            seen = min(r[1] for r in rows[who])
            sent = rows[who][0][2]
            pub = statistics.median(r[3] for r in rows[who])
            lost = f"  (lost {sent - seen} to the 5 s queue TTL)" if seen < sent else ""
            print(
                f"     {name}: median {medians[who]:9,.0f} events/s   "
                f"[publisher {pub:,.0f} msgs/s]{lost}"
            )
        print(
            f"     ratio ours/celery        : {medians['ours'] / medians['celery']:.1f}x"
            f"   (target >= 20,000 events/s end to end)"
        )
    alone = statistics.median(consumer_alone(url, tasks) for _ in range(rounds))
    print(
        f"   one event per message, consumer alone (queue pre-loaded, no publisher running): "
        f"median {alone:,.0f} events/s"
    )


# --------------------------------------------------------------------------- 3. memory


def rss_kb() -> tuple[int, int]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def memory_main(who: str, tasks: int) -> int:
    """Child process: fold ``tasks`` lifecycles with the default bound, print RSS."""
    if who == "celery":
        from celery.events.state import State

        cstate = State(max_tasks_in_memory=10_000)
        apply_one = cstate.event
    else:
        state = MonitorState()

        def apply_one(event: dict[str, Any]) -> None:
            state.apply(event, T0)

    before, _ = rss_kb()
    start = time.perf_counter()
    chunk = 10_000
    for offset in range(0, tasks, chunk):
        for event in stream(min(chunk, tasks - offset), start=offset):
            apply_one(event)
    elapsed = time.perf_counter() - start
    after, peak = rss_kb()
    kept = len(state.tasks) if who == "ours" else len(cstate.tasks)
    print(json.dumps({"before": before, "after": after, "peak": peak, "s": elapsed, "kept": kept}))
    return 0


def bench_memory(tasks: int) -> None:
    print(f"\n3. memory: resident set after {tasks:,} tasks ({tasks * 3:,}+ events), default bound")
    for who, name in (
        ("ours", "amqptool MonitorState    "),
        ("celery", "celery State(10000)      "),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_monitor", "--memory", who, str(tasks)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout)
        print(
            f"   {name}: RSS {r['after'] / 1024:6.1f} MiB (start {r['before'] / 1024:.1f}, "
            f"peak {r['peak'] / 1024:.1f}), {r['kept']} tasks kept, {r['s']:.1f} s"
        )


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--publish", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--memory", nargs=2, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.publish:
        url, mode, tasks = opts.publish
        return publisher_main(url, mode, int(tasks))
    if opts.memory:
        who, tasks = opts.memory
        return memory_main(who, int(tasks))

    from tests import harness

    quick = opts.quick
    bench_ingest(tasks=10_000 if quick else 50_000, rounds=3 if quick else 5)
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    try:
        bench_e2e(
            harness.url_for(vhost), tasks=10_000 if quick else 30_000, rounds=1 if quick else 3
        )
    finally:
        harness.delete_vhost(vhost)
    bench_memory(100_000 if quick else 1_000_000)
    print(f"\n(cpu count {os.cpu_count()}; the broker, publisher and consumer share them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
