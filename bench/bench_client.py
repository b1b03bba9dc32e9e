"""The client's publish rate with publisher confirms against Celery's ``apply_async``.

One throw-away vhost of the local broker, one queue (durable, persistent messages, as Celery
declares and sends them). Each round publishes N tasks with: Celery 5.7's ``send_task`` (the
``apply_async`` path; kombu publishes without confirms), our ``Client.send_task`` (returns
only once the broker confirmed the message: one round trip per call), our ``Client.send_task``
on a ``Client(confirm="pipelined")`` (returns at once; the round ends with ``flush()``, so it
is timed until the broker confirmed every message), and our ``Client.send_many`` (the same
guarantee, pipelined: up to 1000 in flight). Rounds are interleaved so load spikes hit every
row alike; prints each row's median rate, every round's rate, and the ratios to Celery (of the
medians, and round by round).

Run: ``.venv/bin/python -m bench.bench_client [-n TASKS] [-r ROUNDS]``.
Never asserts on numbers; not collected by pytest.

Where a pipelined ``send_task`` spends its time (cProfile, then py-spy at 500 Hz on a 12 s
loop of calls; CPU time per call from ``time.process_time``, which the other load on the
2-core machine disturbs less than wall time; Celery's ``send_task`` took 410-590 us of CPU per
call in the same runs, ``send_many`` 55-90 us per message):

- First cut (publish, then one ``process_events(0)`` per call to write it and read confirms):
  ~230 us CPU per call, 1.4-1.8x Celery. Three costs stood out. Each message went out as three
  ``send()`` calls, one per frame (on loopback a ``send()`` also runs the broker side's receive
  path: 130 us per message under cProfile, the largest single item); pika's header-table
  encoder took 45 us of the ~20 headers of a task message; and the poll per call (pika's I/O
  loop, epoll registrations) about as much again.
- Frames are joined into one ``send()`` (``coalesce_sends``, as the worker does), and a call no
  longer writes by itself: its message is written with the next ones, at the latest 2 ms later
  (by a later call, or by the client's writer thread when no call follows), and confirms are
  read every 64th call or when waiting: ~100 us CPU. (Writing only at every 16th call's poll,
  as an experiment, had measured ~125 us against 210-250 us with a write per call: the write
  per call was the largest single cost.)
- Header tables and properties are encoded into one buffer (45 -> 14 us per task message,
  byte for byte pika's, pinned by property tests), publish frames are built directly rather
  than through pika's per-frame objects, the client lock skips its condition variable when
  it is free and nobody waits for results, the task origin's host name is looked up once per
  process (a ``gethostname()`` system call per message before; Celery memoizes it too), JSON
  bodies go through one encoder built once, and the size check and the write function are no
  longer looked up twice / imported on every call: 75-95 us CPU per call against 50-60 us
  for ``send_many`` in the same runs.
- What is left (py-spy, calling thread): property encoding 14%, building and encoding the
  task message (``build_message``, ``encode_task``, routing: validation, uuid4, JSON) 25%,
  the rest of the publish path 12-16%, the lock / retry wrapper and window bookkeeping 16%,
  writes 8%, reading confirms 6%, waiting on a full window 4% (the broker's pace).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from amqptool.client import Client  # noqa: E402  # after the sys.path fix, so the script runs
from amqptool.settings import BrokerSettings  # noqa: E402  # same reason
from amqptool.transport import Connection  # noqa: E402  # same reason
from tests import harness  # noqa: E402  # same reason

QUEUE = "bench-client"
SHORT = {
    "amqptool Client.send_task (confirmed)": "send_task",
    "amqptool Client.send_task (confirmed, pipelined)": "send_task pipelined",
    "amqptool Client.send_many (confirmed, pipelined)": "send_many",
}


def rate(n: int, publish: Callable[[int], None]) -> float:
    start = time.perf_counter()
    publish(n)
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--tasks", type=int, default=2000, help="tasks per round")
    parser.add_argument("-r", "--rounds", type=int, default=5, help="rounds (default 5)")
    opts = parser.parse_args()
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    from celery import Celery

    app = Celery("bench", broker=url)
    conn = Connection(BrokerSettings.from_url(url, environ={})).connect()
    purge = conn.channel()
    try:
        with Client(url=url) as client, Client(url=url, confirm="pipelined") as piped:

            def celery_send(n: int) -> None:
                for i in range(n):
                    app.send_task("bench.noop", args=(i,), queue=QUEUE)

            def our_send_task(n: int) -> None:
                for i in range(n):
                    client.send_task("bench.noop", [i], queue=QUEUE)

            def our_pipelined(n: int) -> None:
                for i in range(n):
                    piped.send_task("bench.noop", [i], queue=QUEUE)
                piped.flush()  # the round ends when the broker confirmed every message

            def our_send_many(n: int) -> None:
                client.send_many([("bench.noop", [i], {}, {"queue": QUEUE}) for i in range(n)])

            rows = {
                "celery send_task/apply_async (no confirms)": celery_send,
                "amqptool Client.send_task (confirmed)": our_send_task,
                "amqptool Client.send_task (confirmed, pipelined)": our_pipelined,
                "amqptool Client.send_many (confirmed, pipelined)": our_send_many,
            }
            for publish in rows.values():  # warm-up: connections, declarations
                publish(50)
            rates: dict[str, list[float]] = {label: [] for label in rows}
            for _ in range(opts.rounds):
                for label, publish in rows.items():
                    rates[label].append(rate(opts.tasks, publish))
                    purge.queue_purge(QUEUE)
        print(f"{opts.tasks} tasks per round, {opts.rounds} interleaved rounds, same broker\n")
        medians = {label: statistics.median(values) for label, values in rates.items()}
        for label, median in medians.items():
            rounds = " ".join(f"{value:.0f}" for value in rates[label])
            print(f"  {label:50s}: median {median:6.0f} tasks/s  (rounds: {rounds})")
        celery_label = "celery send_task/apply_async (no confirms)"
        celery = medians[celery_label]
        print()
        for label, median in list(medians.items())[1:]:
            per_round = " ".join(
                f"{ours / theirs:.2f}"
                for ours, theirs in zip(rates[label], rates[celery_label], strict=True)
            )
            name = SHORT[label]
            print(f"  ratio {name:28s} / celery: {median / celery:.2f}  (rounds: {per_round})")
    finally:
        app.close()
        conn.close()
        harness.delete_vhost(vhost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
