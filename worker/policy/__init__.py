"""Pure decisions with explicit time: when a task may run, and what the worker remembers.

Rule: no broker, no threads, no clock reads (every decision takes ``now``). May import
``worker.task`` and amqptool's pure core (codec, errors, settings), nothing else of the worker.
The one file it touches is the versioned state file (:class:`~worker.policy.revoked.StateDB`).

- :mod:`worker.policy.eta`: when an ``eta``/``countdown`` task runs (hold or park), the ETA heap;
- :mod:`worker.policy.rate_limit`: Celery's rate strings and a token bucket per task name;
- :mod:`worker.policy.time_limits`: which time limits apply, and the means pools enforce them;
- :mod:`worker.policy.revoked`: the bounded revoked set and the ``--statedb`` file;
- :mod:`worker.policy.queues`: the queues a worker consumes, as Celery describes them;
- :mod:`worker.policy.worker_state`: counters, revoked ids and limits set by control commands.
"""

__all__: list[str] = []
