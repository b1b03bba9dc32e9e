"""The task client: send Celery tasks by name and read their ``rpc://`` results.

::

    from amqptool.client import Client, signature

    with Client(url="amqp://guest:guest@localhost//") as client:
        result = client.send_task("proj.add", (2, 2), link=signature("proj.log"))
        assert result.get(timeout=10) == 4
        group = client.group([("proj.add", (1, 1)), ("proj.add", (2, 2))])
        assert group.join(timeout=10) == [2, 4]

Importing this package does not import pika (the connection is made on first use), so
``amqptool call --help`` stays fast.
"""

from amqptool.client.client import Client
from amqptool.client.default import default_client
from amqptool.client.options import RetryPolicy, build_message, signature
from amqptool.client.result import AsyncResult, GroupResult, ResultMeta

__all__ = [
    "AsyncResult",
    "Client",
    "GroupResult",
    "ResultMeta",
    "RetryPolicy",
    "build_message",
    "default_client",
    "signature",
]
