"""Tasks per second: ONE Celery task module run by our worker and by Celery's worker.

``bench/worker_tasks_celery.py`` (a plain Celery app with ``@app.task`` tasks) is run as it is
by ``amqptool worker -A bench.worker_tasks_celery`` (its tasks go through Celery's own tracer)
and by ``celery -A bench.worker_tasks_celery worker``: same pool kind and size, same broker,
same prefetch, interleaved rounds, one run. Method as in :mod:`bench.bench_worker` (a queue
pre-loaded with a stamp, N tasks and a stamp; the rate is N over the time between the stamps,
taken inside the worker). Prints medians and our/Celery ratios. Never asserts on numbers.

Where the time went with rpc:// results (issue #16): Celery's tracer stored each result through
the app's ``RPCBackend``, which published it with kombu on a connection of its own, from the
pool thread (solo) or the child (prefork). On our solo that thread and the broker thread took
turns on the GIL for two AMQP clients' work, and ours ran at 0.91x / 0.66x Celery's solo in two
quiet runs. The state messages are now built as Celery builds them and published on the
worker's own connection (:mod:`worker.pool.celery_trace`); the next two quiet runs: solo
1.78x / 1.73x, prefork -c 2 2.46x / 2.74x (before 1.61x / 1.76x), Celery's rows unchanged.

Run: ``.venv/bin/python -m bench.bench_dropin [-n 3000] [-r 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_worker import Case, run_case  # noqa: E402  # after the sys.path fix
from tests import harness  # noqa: E402

MODULE = "bench.worker_tasks_celery"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--tasks", type=int, default=3000, help="tasks per run (3000)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="runs per row (3)")
    parser.add_argument("-m", "--prefetch-multiplier", type=int, default=16, help="(16)")
    opts = parser.parse_args()
    pairs = [
        (pool, conc, results)
        for pool, conc in (("solo", 1), ("prefork", 2))
        for results in (False, True)
    ]
    cases: list[tuple[Case, Case]] = []
    for pool, conc, results in pairs:
        tail = f"{pool} -c {conc}{' results' if results else ''}"
        cases.append(
            (
                Case(f"celery {tail}", "celery", pool, conc, results=results, module=MODULE),
                Case(f"amqptool {tail}", "ours", pool, conc, results=results, module=MODULE),
            )
        )
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    runs: dict[str, list[float]] = {c.label: [] for pair in cases for c in pair}
    print(f"{opts.tasks} tasks of {MODULE} per run, median of {opts.repeats}, vhost {vhost}\n")
    try:
        for round_no in range(opts.repeats):  # interleaved: a load spike hits every row alike
            print(f"  round {round_no + 1}/{opts.repeats} ...", flush=True)
            for pair in cases:
                for case in pair:
                    runs[case.label].append(
                        run_case(case, url, opts.tasks, opts.prefetch_multiplier)
                    )
    finally:
        harness.delete_vhost(vhost)
    print()
    for celery, ours in cases:
        theirs, mine = statistics.median(runs[celery.label]), statistics.median(runs[ours.label])
        print(f"  {celery.label:<30} {theirs:>8,.0f} tasks/s")
        print(f"  {ours.label:<30} {mine:>8,.0f} tasks/s   {mine / theirs:4.2f}x Celery")
    return 0


if __name__ == "__main__":
    sys.exit(main())
