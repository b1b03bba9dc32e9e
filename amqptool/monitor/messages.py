"""Past-tense messages the monitor's thread workers post to the UI thread."""

from __future__ import annotations

from textual.message import Message

from amqptool.monitor.actions import Outcome
from amqptool.monitor.core.model import Task
from amqptool.monitor.core.query import TaskFilter
from amqptool.monitor.feed import FeedBatch, FeedStatus
from amqptool.monitor.queues import QueueDepth

__all__ = [
    "ActionFinished",
    "EventsArrived",
    "FeedChanged",
    "IngestMore",
    "QueuesUpdated",
    "StoreMatches",
]


class EventsArrived(Message):
    def __init__(self, batch: FeedBatch) -> None:
        super().__init__()
        self.batch = batch


class IngestMore(Message):
    """Events are still pending: fold the next chunk (after the keys queued meanwhile)."""


class FeedChanged(Message):
    def __init__(self, status: FeedStatus) -> None:
        super().__init__()
        self.status = status


class QueuesUpdated(Message):
    def __init__(self, depths: list[QueueDepth], note: str = "") -> None:
        super().__init__()
        self.depths = depths
        self.note = note


class ActionFinished(Message):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


class StoreMatches(Message):
    def __init__(self, filt: TaskFilter, tasks: list[Task]) -> None:
        super().__init__()
        self.filt = filt
        self.tasks = tasks
