"""``python -m bench`` (``make bench``): every benchmark, one after another.

Each prints medians and ratios against its peer measured in the same run on the same broker.
Benchmarks never fail on a number; a benchmark that crashes is reported and the rest still run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    "bench_shell",
    "bench_control",
    "bench_monitor",
    "bench_monitor_ui",
    "bench_monitor_keys",
    "bench_worker",
    "bench_client",
    "bench_results",
    "bench_cluster",
    "bench_dropin",
]


def main() -> int:
    failed = []
    for name in BENCHES:
        if not (ROOT / "bench" / f"{name}.py").exists():
            continue
        print(f"\n=== {name} ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        if rc != 0:
            failed.append(name)
    if failed:
        print("benchmarks that did not finish: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
