#!/usr/bin/env python3
"""Drive the second test broker node (amqptool-b@localhost) by hand, outside pytest.

    .venv/bin/python scripts/second_broker.py start      # boot or reuse it, print its URLs
    .venv/bin/python scripts/second_broker.py status
    .venv/bin/python scripts/second_broker.py stop-app   # listeners close, the node stays up
    .venv/bin/python scripts/second_broker.py start-app
    .venv/bin/python scripts/second_broker.py stop       # halt the node

The test suite starts and stops it by itself (tests/brokers.py); this is for debugging a
fault test or trying the TLS listener with the CLI. ``stop`` refuses while a pytest session
still uses the node, unless given ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.brokers import SecondBroker, file_lock  # needs the path set above


def describe(node: SecondBroker) -> str:
    running = node.node_running()
    app = node.app_running()
    users = sorted(p.name for p in (node.base / "users").glob("*")) if running else []
    return "\n".join(
        [
            f"node      {node.nodename}: {'running' if running else 'stopped'}"
            f" (app {'up' if app else 'down'})",
            f"amqp      {node.url()}",
            f"amqps     {node.tls_url()}  --ssl-ca {node.certs.ca_file}",
            f"wrong CA  {node.certs.other_ca_file}",
            f"state     {node.base}",
            f"sessions  {', '.join(users) or 'none'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "status", "stop", "stop-app", "start-app"])
    parser.add_argument("--force", action="store_true", help="stop even while sessions use it")
    args = parser.parse_args(argv)
    node = SecondBroker()
    if args.action == "start":
        with file_lock(node.base / "state.lock"):
            node.start()
            if not node.app_running():
                node.start_app()
        if node.boot_seconds is not None:
            print(f"booted in {node.boot_seconds:.1f}s")
    elif args.action == "stop":
        live = node.stop_unless_used(force=args.force)
        if live:
            print(f"in use by pytest sessions {live}; use --force", file=sys.stderr)
            return 1
    elif args.action == "stop-app":
        node.stop_app()
    elif args.action == "start-app":
        node.start_app()
    print(describe(node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
