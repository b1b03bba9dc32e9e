"""A small client of RabbitMQ's management HTTP API (standard library only)."""

from amqptool.mgmt.client import (
    DEFAULT_MGMT_PORT,
    ManagementUnavailableError,
    MgmtClient,
    MgmtEndpoint,
    mgmt_endpoint,
)

__all__ = [
    "DEFAULT_MGMT_PORT",
    "ManagementUnavailableError",
    "MgmtClient",
    "MgmtEndpoint",
    "mgmt_endpoint",
]
