"""Celery's configuration for every amqptool command: names, layers, provenance, routing."""

from amqptool.celeryconf.resolve import Resolved, load_module, resolve
from amqptool.celeryconf.table import SETTINGS, Setting

__all__ = ["SETTINGS", "Resolved", "Setting", "load_module", "resolve"]
