"""``python -m amqptool``."""

import sys

from amqptool.cli import main

sys.exit(main())
