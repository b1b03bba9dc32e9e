"""The client's publish rate with publisher confirms against Celery's ``apply_async``.

One throw-away vhost of the local broker, one queue (durable, persistent messages, as Celery
declares and sends them). Each round publishes N tasks with: Celery 5.7's ``send_task`` (the
``apply_async`` path; kombu publishes without confirms), our ``Client.send_task`` (returns
only once the broker confirmed the message: one round trip per call), and our
``Client.send_many`` (the same guarantee, pipelined: up to 1000 in flight). Rounds are
interleaved so load spikes hit every row alike; prints the median rate of each and the ratios.

Run: ``.venv/bin/python -m bench.bench_client [-n TASKS] [-r ROUNDS]``.
Never asserts on numbers; not collected by pytest.
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
