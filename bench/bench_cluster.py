"""What replication costs: our worker on a quorum queue in a 3-node cluster vs a classic queue.

Same run, same worker (``amqptool worker -P threads -c 2``, results off), same method as
``bench_worker`` (a queue pre-loaded with a stamp task, N trivial tasks and a stamp; the rate is
N over the time between the stamps, taken inside the worker). Rows:

- classic queue on the main broker (one node, as most users run it today);
- classic queue on cluster node c1 (the same light Erlang VM as the cluster's nodes: separates
  the VM settings from replication);
- quorum queue in the cluster (declared on c1, so its leader is there; the worker on c1 too;
  every message replicated to c2 and c3 before the broker confirms it or delivers it).

The cluster is the tests' one (``tests/cluster.py``: three nodes on 5691-5693), started for the
run and stopped after it unless a test session uses it. Prints medians and the quorum/classic
ratio; never asserts on a number.

Run: ``.venv/bin/python -m bench.bench_cluster [-n 5000] [-r 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_worker import Case, run_case  # noqa: E402  # after the sys.path fix
from tests import harness  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

CASE = Case("ours threads -c 2", "ours", "threads", 2)
QUORUM = {"x-queue-type": "quorum"}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--tasks", type=int, default=5000, help="tasks per run (5000)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="runs per row (3)")
    parser.add_argument("-m", "--prefetch-multiplier", type=int, default=16, help="(16)")
    opts = parser.parse_args()
    harness.ensure_broker()
    main_vhost = harness.create_vhost("amqptool-bench")
    cluster = Cluster().acquire()
    print(f"cluster formed in {cluster.formed_seconds or 0:.1f}s (or already running)")
    cluster_vhost = cluster.add_vhost(f"amqptool-bench-{uuid.uuid4().hex[:6]}")
    c1 = cluster.nodes[0].url(cluster_vhost)
    rows: list[tuple[str, str, dict[str, Any] | None]] = [
        ("classic queue, main broker (1 node)", harness.url_for(main_vhost), None),
        ("classic queue, cluster node c1", c1, None),
        ("quorum queue, 3-node cluster", c1, QUORUM),
    ]
    runs: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    print(
        f"{opts.tasks} trivial tasks per run, median of {opts.repeats}, {CASE.label}, "
        f"prefetch multiplier {opts.prefetch_multiplier}\n"
    )
    try:
        for round_no in range(opts.repeats):  # interleaved: a load spike hits every row alike
            print(f"  round {round_no + 1}/{opts.repeats} ...", flush=True)
            for label, url, arguments in rows:
                runs[label].append(
                    run_case(CASE, url, opts.tasks, opts.prefetch_multiplier, arguments)
                )
    finally:
        cluster.delete_vhost(cluster_vhost)
        cluster.release()
        harness.delete_vhost(main_vhost)
    print()
    rates = {label: statistics.median(values) for label, values in runs.items()}
    for label, values in runs.items():
        shown = ", ".join(f"{r:,.0f}" for r in values)
        print(f"  {label:<38} {rates[label]:>8,.0f} tasks/s   ({shown})")
    quorum = rates[rows[2][0]]
    print(
        f"\n  quorum (cluster) / classic (1 node):   {quorum / rates[rows[0][0]]:.2f}x"
        f"\n  quorum (cluster) / classic (same VM):  {quorum / rates[rows[1][0]]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
