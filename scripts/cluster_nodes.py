#!/usr/bin/env python3
"""Drive the tests' three-node RabbitMQ cluster (amqptool-c1..c3@localhost) by hand.

    .venv/bin/python scripts/cluster_nodes.py start    # form it (or reuse it), print its URLs
    .venv/bin/python scripts/cluster_nodes.py status
    .venv/bin/python scripts/cluster_nodes.py stop     # halt all three nodes

The test suite forms and stops it by itself (tests/cluster.py); this is for debugging a cluster
drill. ``stop`` refuses while a pytest session still uses the cluster, unless given ``--force``.
The main broker (5672) is never touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cluster import Cluster  # needs the path set above
from tests.shared_use import file_lock


def describe(cluster: Cluster) -> str:
    running = cluster.running_nodes()
    lines = [
        f"{node.nodename:<24} {'running' if node.nodename in running else 'down':<8} "
        f"{node.url()}  (state {node.base})"
        for node in cluster.nodes
    ]
    lines.append(f"url list  {cluster.urls()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("action", choices=["start", "status", "stop"])
    parser.add_argument("--force", action="store_true", help="stop even while sessions use it")
    args = parser.parse_args(argv)
    cluster = Cluster()
    if args.action == "start":
        with file_lock(cluster.base / "state.lock"):
            cluster.start()
        if cluster.formed_seconds is not None:
            print(f"formed in {cluster.formed_seconds:.1f}s")
    elif args.action == "stop":
        live = cluster.stop_unless_used(force=args.force)
        if live:
            print(f"in use by pytest sessions {live}; use --force", file=sys.stderr)
            return 1
        return 0
    print(describe(cluster))
    return 0


if __name__ == "__main__":
    sys.exit(main())
