"""Wall time of ``amqptool control ping`` against ``celery inspect ping`` on the same worker.

Starts one real Celery 5.7 worker (solo pool) on a throw-away vhost of the local broker, then
runs each command N times, interleaved (ours, Celery's, ours, ...), as fresh processes, the way
a health-check probe runs them. Prints the medians and the ratio ours/Celery (target <= 0.5)
for the ``-d NODE`` form, and for a plain broadcast as a second row; then the ``-d NODE`` row
again against our own worker (``python -m worker``, threads pool).

Run: ``.venv/bin/python -m bench.bench_control [-n RUNS]`` (or ``python bench/bench_control.py``).
Never asserts on numbers; not collected by pytest.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import harness  # noqa: E402  # after the sys.path fix, so the script runs directly
from tests.worker_support import WorkerProcess  # noqa: E402  # same reason


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  ! rc={proc.returncode}: {' '.join(cmd[2:6])} ...: {proc.stderr.strip()[-200:]}")
    return elapsed, proc.returncode


def compare(label: str, ours: list[str], celery: list[str], runs: int) -> None:
    timed(ours)  # warm-up: .pyc files, page cache
    timed(celery)
    ours_t: list[float] = []
    celery_t: list[float] = []
    for _ in range(runs):
        ours_t.append(timed(ours)[0])
        celery_t.append(timed(celery)[0])
    mo, mc = statistics.median(ours_t), statistics.median(celery_t)
    print(f"{label}")
    print(f"  amqptool control : median {mo * 1000:7.1f} ms  (min {min(ours_t) * 1000:.1f})")
    print(f"  celery inspect   : median {mc * 1000:7.1f} ms  (min {min(celery_t) * 1000:.1f})")
    print(f"  ratio ours/celery: {mo / mc:.2f}  (target <= 0.50)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10, help="runs of each (default 10)")
    opts = parser.parse_args()
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    try:
        py = sys.executable
        with harness.CeleryPeer(url) as peer:
            node = peer.nodename
            print(f"worker {node} (Celery 5.7, solo), {opts.runs} interleaved runs each\n")
            compare(
                f"ping -d {node}",
                [py, "-m", "amqptool", "control", "-b", url, "ping", "-d", node],
                [py, "-m", "celery", "-b", url, "inspect", "ping", "-d", node],
                opts.runs,
            )
            print()
            compare(
                "ping (broadcast, default timeout 1 s)",
                [py, "-m", "amqptool", "control", "-b", url, "ping"],
                [py, "-m", "celery", "-b", url, "inspect", "ping"],
                opts.runs,
            )
        with WorkerProcess(url, "-P", "threads", "-c", "2") as ours:
            node = ours.nodename
            print(f"\nworker {node} (amqptool worker, threads -c 2), same broker\n")
            compare(
                f"ping -d {node}",
                [py, "-m", "amqptool", "control", "-b", url, "ping", "-d", node],
                [py, "-m", "celery", "-b", url, "inspect", "ping", "-d", node],
                opts.runs,
            )
    finally:
        harness.delete_vhost(vhost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
