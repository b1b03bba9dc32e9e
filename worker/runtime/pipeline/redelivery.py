"""A redelivered copy of a task this worker is still running never starts a second run.

When the broker closes the task channel under a running ``acks_late`` task (most often
RabbitMQ's ``consumer_timeout``: "406 PRECONDITION_FAILED - delivery acknowledgement on channel
N timed out"), the delivery goes back to the queue and comes again, flagged ``redelivered``, on
the new channel, maybe to this very worker while the first run goes on. Running it again would
run the task twice at once, and again after every further timeout.

The rule here: a redelivered delivery whose task id matches a request of an *earlier* channel
generation still in this worker's hands is **held** (unacked, not run). When that first run
ends, its outcome is the task's outcome (its result and events are already out):

- it finished (success, failure, retry scheduled, time limit, revoked, or lost with a FAILURE
  result): the held copy is **acked**, not run. The first run's result stands;
- it ended asking to be run again (``Reject(requeue=True)``, or a lost child of a task with
  ``reject_on_worker_lost``): the held copy **runs**, as the requeue meant.

Held copies belong to the current channel; a connection loss drops them (the broker redelivers
them again, and they are held again while the first run lasts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from worker.runtime.link import BrokerLink
from worker.runtime.request import Request
from worker.runtime.settle import Settle

__all__ = ["RedeliveryGuard"]

log = logging.getLogger("worker.consumer")


class RedeliveryGuard:
    """Holds redelivered copies of tasks still running in ``active`` (the consumer's requests);
    ``admit`` puts a copy back in the pipeline when the first run asked to run again."""

    def __init__(
        self,
        link: BrokerLink,
        active: Mapping[int, Request],
        settle: Settle,
        *,
        admit: Callable[[Request], None],
    ) -> None:
        self.link = link
        self.active = active
        self.settle = settle
        self.admit = admit
        self.held: dict[str, list[Request]] = {}
        self.held_total = 0

    def hold(self, req: Request) -> bool:
        """True when ``req`` is a redelivered copy of a task still running here (now held)."""
        if not req.redelivered:
            return False
        task_id = req.message.id
        first = next(
            (
                r
                for r in self.active.values()
                if r.message.id == task_id and r.generation < req.generation
            ),
            None,
        )
        if first is None:
            return False
        self.held.setdefault(task_id, []).append(req)
        self.held_total += 1
        log.warning(
            "Task %s[%s] was redelivered while it still runs here (the broker closed the "
            "channel of its first delivery); holding the copy until the run ends",
            req.message.task,
            task_id,
        )
        return True

    def finished(self, first: Request, *, run_again: bool) -> None:
        """The run of ``first`` ended: settle the copies held for its task id."""
        copies = self.held.pop(first.message.id, None)
        if not copies:
            return
        for copy in copies:
            if copy.generation != self.link.generation:
                continue  # its channel is gone too: the broker has it back
            if run_again:
                log.warning(
                    "Task %s[%s]: the first run asked to run again; running the held copy",
                    copy.message.task,
                    copy.id,
                )
                self.admit(copy)
                run_again = False  # one run, not one per copy
            else:
                log.warning(
                    "Task %s[%s]: the first run's outcome stands; acking the redelivered copy",
                    copy.message.task,
                    copy.id,
                )
                self.settle.ack(copy)

    def clear(self) -> None:
        """The connection is gone: held copies go back to the queue with it."""
        self.held.clear()
