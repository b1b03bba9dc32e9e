"""``python -m worker``: the same as ``amqptool worker`` (same options, help and exit codes)."""

import sys

from amqptool.entrypoint import run_one
from worker import cli

sys.exit(run_one("amqptool worker", cli.SUMMARY, cli, sys.argv[1:]))
