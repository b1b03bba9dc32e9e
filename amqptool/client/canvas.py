"""Canvas for the client: ``chain``, ``group``, ``chord``, ``xmap``/``xstarmap``, ``chunks``.

Each builds a :class:`~amqptool.client.signature.Signature` of Celery's shape (``celery.chain``,
``celery.group``, ``celery.chord`` with ``subtask_type``), so a Celery worker and ours run them.
:func:`apply` sends one the way a Celery 5.7 client does:

- a chain: every step gets its id up front; the first step is sent carrying the others in its
  ``chain`` (last step first); a group followed by a step becomes a chord; a chain may end in
  a group. The result is the last step's, with ``parent`` links back to the first.
- a group: one message per member with the group id and index; a :class:`GroupResult`.
- a chord: needs a stored result backend. On Redis the chord size is set and every header
  member carries the body (the worker that finishes the header sends it); on SQL the header is
  followed by ``celery.chord_unlock``, which polls. The result is the body's (parent: header).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from amqptool.client.options import build_message
from amqptool.client.result import AsyncResult, GroupResult
from amqptool.client.signature import Signature, maybe_signature
from amqptool.codec.tasks import TaskMessage
from amqptool.errors import UsageError

if TYPE_CHECKING:
    from amqptool.client.client import Client

__all__ = ["apply", "chain", "chord", "chunks", "group", "xmap", "xstarmap"]

# Options a message takes from its signature (the rest, e.g. queue, are routing).
_MESSAGE_OPTIONS = (
    "countdown",
    "eta",
    "expires",
    "priority",
    "link",
    "link_error",
    "headers",
    "shadow",
    "time_limit",
    "soft_time_limit",
    "ignore_result",
    "parent_id",
    "root_id",
)


def _app(sigs: Iterable[Any], app: Client | None) -> Client | None:
    return app or next((s.app for s in sigs if getattr(s, "app", None) is not None), None)


def chain(*tasks: Any, app: Client | None = None) -> Signature:
    """``a | b | c``: each step gets the previous step's result as its first argument."""
    steps: list[Signature] = []
    for t in tasks[0] if len(tasks) == 1 and not isinstance(tasks[0], Mapping) else tasks:
        sig = maybe_signature(t)
        if sig.get("subtask_type") == "chain":
            steps.extend(sig["kwargs"]["tasks"])
        else:
            steps.append(sig)
    client = _app(steps, app)
    return Signature("celery.chain", (), {"tasks": steps}, subtask_type="chain", app=client)


def group(*tasks: Any, app: Client | None = None) -> Signature:
    """Run the tasks in parallel; the result is a GroupResult in call order."""
    items = tasks[0] if len(tasks) == 1 and not isinstance(tasks[0], Mapping) else tasks
    members = [maybe_signature(t) for t in items]
    client = _app(members, app)
    return Signature("celery.group", (), {"tasks": members}, subtask_type="group", app=client)


def chord(header: Any, body: Mapping[str, Any], app: Client | None = None) -> Signature:
    """Run ``header`` (a group or list) in parallel, then ``body`` with the list of results."""
    head = maybe_signature(header) if isinstance(header, Mapping) else group(header)
    tail = maybe_signature(body)
    client = _app([head, tail], app)
    kwargs = {"header": head, "body": tail}
    return Signature("celery.chord", (), kwargs, subtask_type="chord", app=client)


def xmap(task: Mapping[str, Any], it: Iterable[Any], app: Client | None = None) -> Signature:
    """One task (``celery.map``) calling ``task`` once per item."""
    sig = maybe_signature(task)
    return Signature("celery.map", (), {"task": sig, "it": list(it)}, app=_app([sig], app))


def xstarmap(task: Mapping[str, Any], it: Iterable[Any], app: Client | None = None) -> Signature:
    """One task (``celery.starmap``) calling ``task(*item)`` per item."""
    sig = maybe_signature(task)
    items = [list(i) for i in it]
    return Signature("celery.starmap", (), {"task": sig, "it": items}, app=_app([sig], app))


def chunks(
    task: Mapping[str, Any], it: Iterable[Any], n: int, app: Client | None = None
) -> Signature:
    """The items in chunks of ``n``: a group of ``celery.starmap`` tasks (a GroupResult)."""
    if n < 1:
        raise UsageError(f"chunk size must be at least 1, not {n}")
    items = [list(i) for i in it]
    sig = maybe_signature(task)
    client = _app([sig], app)
    return group([xstarmap(sig, items[i : i + n], app=client) for i in range(0, len(items), n)])


# ---------------------------------------------------------------------------- sending


def apply(sig: Signature) -> Any:
    """Send a signature of any shape (see the module docstring); returns its result."""
    from amqptool.client.default import default_client

    client = sig.app or default_client()
    return _Sender(client).apply(sig)


class _Sender:
    def __init__(self, client: Client) -> None:
        self.client = client

    def apply(self, sig: Signature) -> AsyncResult | GroupResult:
        kind = sig.get("subtask_type")
        if kind == "group":
            return self.group(sig, sig["kwargs"]["tasks"])
        if kind == "chain":
            return self.chain(list(sig["kwargs"]["tasks"]), sig.options)
        if kind == "chord":
            kw = sig["kwargs"]
            return self.chord(maybe_signature(kw["header"]), maybe_signature(kw["body"]))
        msg, queue = self.message(sig)
        self.client.publish([(msg, queue)])
        return self.result(msg.id)

    def result(self, task_id: str, parent: AsyncResult | None = None) -> AsyncResult:
        return AsyncResult(task_id, self.client.results, app=self.client, parent=parent)

    def message(self, sig: Mapping[str, Any], **extra: Any) -> tuple[TaskMessage, str | None]:
        opts = dict(sig.get("options") or {})
        kw = {k: opts[k] for k in _MESSAGE_OPTIONS if opts.get(k) is not None}
        kw.update(extra)
        msg = build_message(
            str(sig["task"]),
            sig.get("args") or (),
            sig.get("kwargs"),
            task_id=opts.get("task_id"),
            reply_to=self.client.oid,
            **kw,
        )
        if opts.get("group_id") and msg.group is None:
            msg.group = str(opts["group_id"])
        queue = opts.get("queue")
        return msg, None if queue is None else str(queue)  # None: the client's router decides

    def freeze(self, sig: Signature) -> None:
        """Give a step (and a group's members) its ids and our reply queue."""
        sig.options.setdefault("reply_to", self.client.oid)
        if sig.get("subtask_type") == "group":
            gid = sig.freeze()
            for index, member in enumerate(sig["kwargs"]["tasks"]):
                member.set(group_id=gid, group_index=index)
                self.freeze(member)
        elif sig.get("subtask_type") is None:
            sig.freeze()
        else:
            raise UsageError(f"a chain step cannot be a {sig.get('subtask_type')} here")

    def group(self, sig: Mapping[str, Any], members: Sequence[Any]) -> GroupResult:
        gid = str((sig.get("options") or {}).get("task_id") or uuid.uuid4())
        items = []
        for index, member in enumerate(members):
            msg, queue = self.message(maybe_signature(member), group=gid, group_index=index)
            items.append((msg, queue))
        if items:
            self.client.publish(items)
        return GroupResult(gid, [self.result(m.id) for m, _ in items], self.client.results)

    def chain(self, steps: list[Any], options: Mapping[str, Any]) -> AsyncResult | GroupResult:
        sigs = [maybe_signature(s).clone() for s in steps]
        if not sigs:
            raise UsageError("an empty chain")
        if len(sigs) >= 2 and sigs[-2].get("subtask_type") == "group":  # group | task: a chord
            sigs[-2:] = [chord(sigs[-2], sigs[-1])]
        first, rest = sigs[0], sigs[1:]
        if first.get("subtask_type") == "chord" and not rest:
            kw = first["kwargs"]
            return self.chord(maybe_signature(kw["header"]), maybe_signature(kw["body"]))
        for sig in sigs:
            self.freeze(sig)
        msg, queue = self.message(first)
        msg.chain = [dict(s) for s in reversed(rest)] or None
        self.client.publish([(msg, queue)])
        result: AsyncResult | GroupResult = self.result(msg.id)
        for sig in rest:
            parent = result if isinstance(result, AsyncResult) else None
            if sig.get("subtask_type") == "group":
                members = [self.result(str(m.id)) for m in sig["kwargs"]["tasks"]]
                result = GroupResult(str(sig.id), members, self.client.results)
            else:
                result = self.result(str(sig.id), parent=parent)
        return result

    def chord(self, header: Signature, body: Signature) -> AsyncResult:
        backend = getattr(self.client.results, "backend", None)
        if backend is None:
            raise UsageError(
                "a chord needs a stored result backend (Client(backend='redis://...'))"
            )
        members = [maybe_signature(m) for m in header["kwargs"]["tasks"]]
        gid = header.id or str(uuid.uuid4())
        body = body.clone(group_id=gid, reply_to=self.client.oid)
        body.freeze()
        items = []
        for index, member in enumerate(members):
            msg, queue = self.message(member, group=gid, group_index=index)
            if backend.native_chords:
                msg.chord = dict(body)
            items.append((msg, queue))
        tuples = [[[m.id, None], None] for m, _ in items]
        if backend.native_chords:
            backend.set_chord_size(gid, len(items))
        else:
            unlock = Signature(
                "celery.chord_unlock",
                (gid, dict(body)),
                {"result": tuples, "interval": None, "max_retries": None},
                {"countdown": 1, "queue": body.options.get("queue")},
            )
            items.append(self.message(unlock))
        self.client.publish(items)
        header_result = GroupResult(gid, [self.result(m.id) for m, _ in items[: len(tuples)]])
        result = self.result(str(body.id))
        result.parent = header_result
        return result
