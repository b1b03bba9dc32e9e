"""``python -m worker``: the same as ``amqptool worker``."""

import sys

from amqptool.cli import main

sys.exit(main(["worker", *sys.argv[1:]]))
