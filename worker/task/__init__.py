"""What user code sees: defining tasks, the registry, ``self.request``, exceptions, retry, periodic.

Rule: no broker, no threads, no I/O of its own. Imports only :mod:`amqptool.codec`,
:mod:`amqptool.errors` and other ``worker.task`` modules (the client, for ``delay``, is reached
lazily). Everything here is safe to import from a task module.

- :mod:`worker.task.define`: the ``task`` decorator, the ``Task`` base class, the registry;
- :mod:`worker.task.context`: ``self.request``, per pool thread;
- :mod:`worker.task.exceptions`: ``Retry``, ``Reject``, ``Ignore`` ... named like Celery's;
- :mod:`worker.task.retry_plan`: when and whether to retry (pure arithmetic);
- :mod:`worker.task.retry_message`: the republished message of ``Task.retry()``;
- :mod:`worker.task.periodic`: ``schedule``, ``crontab``, ``periodic_task`` and their registry;
- :mod:`worker.task.periodic_class`: ``class T(PeriodicTask)``;
- :mod:`worker.task.eager`: ``Task.apply()``, ``task_always_eager``;
- :mod:`worker.task.argcheck`: does a call fit ``run`` (``typing``);
- :mod:`worker.task.sending`: the client tasks send through inside a worker;
- :mod:`worker.task.log`: ``get_task_logger``, lines naming the running task and its id.
"""

__all__: list[str] = []
