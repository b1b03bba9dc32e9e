"""The task client: send Celery tasks and canvases by name and read their results.

::

    from amqptool.client import Client, chord, group, signature

    with Client(url="amqp://guest:guest@localhost//") as client:
        result = client.send_task("proj.add", (2, 2), link=signature("proj.log"))
        assert result.get(timeout=10) == 4
        both = client.group([("proj.add", (1, 1)), ("proj.add", (2, 2))])
        assert both.join(timeout=10) == [2, 4]

    with Client(url=..., backend="redis://localhost:6379/0") as client:   # results by id
        add, mul = client.signature("proj.add"), client.signature("proj.mul")
        assert (add.clone((2, 2)) | mul.clone((4,))).delay().get(timeout=10) == 16
        header = group(add.clone((i, i)) for i in range(3))
        assert chord(header, client.signature("proj.tsum")).delay().get(timeout=10) == 6

Importing this package does not import pika (the connection is made on first use), so
``amqptool call --help`` stays fast.
"""

from amqptool.client.canvas import chain, chord, chunks, group, xmap, xstarmap
from amqptool.client.client import Client
from amqptool.client.default import default_client
from amqptool.client.options import RetryPolicy, build_message, signature
from amqptool.client.result import AsyncResult, GroupResult, ResultMeta
from amqptool.client.signature import Signature

__all__ = [
    "AsyncResult",
    "Client",
    "GroupResult",
    "ResultMeta",
    "RetryPolicy",
    "Signature",
    "build_message",
    "chain",
    "chord",
    "chunks",
    "default_client",
    "group",
    "signature",
    "xmap",
    "xstarmap",
]
