"""Where task code runs: the Pool protocol, the threads pools, prefork, one task's execution.

Rule: never the broker. A pool takes jobs from the broker thread and hands reports back
through ``notify``; it imports ``worker.task`` and ``worker.policy``, never ``worker.runtime``
or ``amqptool.transport`` (results, acks and events are *described* in reports and sent by the
broker thread).

- :mod:`worker.pool.threads`: the Pool protocol, the threads pool and ``create_pool``;
- :mod:`worker.pool.prefork`: one forked child process per slot;
- :mod:`worker.pool.execute`: running one task (a Job in, an Outcome out);
- :mod:`worker.pool.callbacks`: the messages a finished task sends next (link, chain, errbacks);
- :mod:`worker.pool.orphans`: a prefork child dies with its parent (``PR_SET_PDEATHSIG``).
"""

__all__: list[str] = []
