"""Wall time of a one-shot ``amqptool shell queue.declare X`` against ``celery amqp``.

Both run as fresh processes on the same broker (a throw-away vhost of the local RabbitMQ), N
times each, interleaved (ours, Celery's, ours, ...): ``queue.declare X`` then ``queue.delete
X``. Prints the medians of the declare alone and of declare + delete, and the ratio ours/Celery
(target <= 0.5).

Run: ``.venv/bin/python -m bench.bench_shell [-n RUNS]`` (or ``python bench/bench_shell.py``).
Never asserts on numbers; not collected by pytest.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import harness  # noqa: E402  # after the sys.path fix, so the script runs directly


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  ! rc={proc.returncode}: {' '.join(cmd[2:])}: {proc.stderr.strip()[-200:]}")
    return elapsed


def ours(url: str, *command: str) -> list[str]:
    return [sys.executable, "-m", "amqptool", "shell", "-b", url, *command]


def celery(url: str, *command: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-b", url, "amqp", *command]


def pair(build: object, url: str) -> tuple[float, float]:
    """(declare, declare + delete) seconds for one fresh queue name."""
    assert callable(build)
    name = f"bench-shell-{uuid.uuid4().hex[:8]}"
    declare = timed(build(url, "queue.declare", name))
    delete = timed(build(url, "queue.delete", name))
    return declare, declare + delete


def report(label: str, ours_t: list[float], celery_t: list[float]) -> None:
    mo, mc = statistics.median(ours_t), statistics.median(celery_t)
    print(label)
    print(f"  amqptool shell : median {mo * 1000:7.1f} ms  (min {min(ours_t) * 1000:.1f})")
    print(f"  celery amqp    : median {mc * 1000:7.1f} ms  (min {min(celery_t) * 1000:.1f})")
    print(f"  ratio ours/celery: {mo / mc:.2f}  (target <= 0.50)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs of each (default 15)")
    opts = parser.parse_args()
    harness.ensure_broker()
    # Celery's files come compiled from site-packages; compile ours the same way (this
    # environment may set PYTHONDONTWRITEBYTECODE, which would leave the work tree uncompiled).
    compileall.compile_dir(str(ROOT / "amqptool"), quiet=1)
    vhost = harness.create_vhost("amqptool-bench")
    url = harness.url_for(vhost)
    try:
        pair(ours, url)  # warm-up: .pyc files, page cache
        pair(celery, url)
        ours_d: list[float] = []
        ours_p: list[float] = []
        cel_d: list[float] = []
        cel_p: list[float] = []
        for _ in range(opts.runs):
            d, p = pair(ours, url)
            ours_d.append(d)
            ours_p.append(p)
            d, p = pair(celery, url)
            cel_d.append(d)
            cel_p.append(p)
        print(f"one-shot shell commands, {opts.runs} runs each, interleaved, on {vhost}")
        report("queue.declare X", ours_d, cel_d)
        report("queue.declare X + queue.delete X", ours_p, cel_p)
    finally:
        harness.delete_vhost(vhost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
