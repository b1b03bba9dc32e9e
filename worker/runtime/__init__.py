"""The broker thread: the one thread that owns the worker's pika connection.

Rule: the only worker code (with the beat's own connection, :mod:`worker.beat`) that imports
``amqptool.transport``. Other threads reach it only through ``Consumer.notify``. It may import
every lower layer (``control``, ``pool``, ``policy``, ``task``).

- :mod:`worker.runtime.consumer`: the loop (receive, pipeline, pool, acks, timers, events);
- :mod:`worker.runtime.link`: one connection, its channels and Celery's topology;
- :mod:`worker.runtime.acks`: batched acknowledgements for one channel;
- :mod:`worker.runtime.timer`: the broker thread's timer heap;
- :mod:`worker.runtime.events`: the event sender; :mod:`worker.runtime.mailbox`: the pidbox;
- :mod:`worker.runtime.mingle`: learning other workers' revokes at startup;
- :mod:`worker.runtime.revoked_keeper`: ``--statedb`` loading and saving;
- :mod:`worker.runtime.request`: a received task as the broker thread tracks it;
- :mod:`worker.runtime.settle`: settle-once (ack, reject, requeue, revoke) and task states;
- :mod:`worker.runtime.pipeline`: the stages a delivery goes through.
"""

__all__: list[str] = []
