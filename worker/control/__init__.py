"""Remote control: one command registry and its handlers (inspect and control commands).

Rule: handlers see only a narrow target (:class:`~worker.control.registry.ControlTarget`), never
the broker; they are called on the broker thread by :mod:`worker.runtime.mailbox`. Importing
this package registers every built-in command.

- :mod:`worker.control.registry`: ``control_command``, the table, dispatch, the basic commands;
- :mod:`worker.control.admin`: stats, tasks, queues and the pool;
- :mod:`worker.control.info`: ``conf``, ``report``, memory samples and dumps;
- :mod:`worker.control.scheduling`: revoke, terminate, hello, rate and time limits, scheduled;
- :mod:`worker.control.arguments`: the argument checks every command uses (any peer may send).
"""

from worker.control import admin, info, registry, scheduling

__all__ = ["admin", "info", "registry", "scheduling"]
