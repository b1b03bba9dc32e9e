"""The periodic-task scheduler ("beat"): its own thread and its own broker connection.

Rule: pure scheduling in :mod:`worker.beat.scheduler` (clock injected, one schedule file);
:mod:`worker.beat.embedded` runs it inside a worker (``-B``) on a connection of its own, never
the broker thread's. The periodic definitions users write live in :mod:`worker.task.periodic`.
"""

__all__: list[str] = []
