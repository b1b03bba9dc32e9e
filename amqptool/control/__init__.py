"""amqptool control: the remote-control (pidbox) client library and its command line.

``ControlClient`` is imported lazily (it brings pika along), so importing this package, the
command table (:mod:`amqptool.control.command_table`) or the renderer stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amqptool.control.client import ControlClient

__all__ = ["ControlClient"]


def __getattr__(name: str) -> Any:
    if name == "ControlClient":
        from amqptool.control.client import ControlClient

        return ControlClient
    raise AttributeError(f"module 'amqptool.control' has no attribute {name!r}")
