"""A task signature: one call of a task by name, as Celery puts it on the wire, that can also be
sent (``delay``, ``apply_async``), copied (``clone``), adjusted (``set``), linked (``link``,
``on_error``) and chained (``a | b``).

It *is* the wire dict (``{"task", "args", "kwargs", "options", "subtask_type", "immutable"}``),
so it goes into ``link=``/``link_error=`` and message bodies as it is. The client that sends it
is ``app`` (given, or the process-wide default client).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amqptool.client.client import Client

__all__ = ["Signature", "maybe_signature"]


class Signature(dict[str, Any]):
    """One task call (Celery's ``Signature``); a dict on the wire."""

    def __init__(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        subtask_type: str | None = None,
        app: Client | None = None,
    ) -> None:
        super().__init__(
            task=task,
            args=list(args),
            kwargs=dict(kwargs or {}),
            options=dict(options or {}),
            subtask_type=subtask_type,
            immutable=bool(immutable),
        )
        self.app = app

    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        """A deep copy of the call that shares the client (a connection is never copied)."""
        data = {k: copy.deepcopy(v, memo) for k, v in self.items()}
        return _rebuild(data, self.app)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))  # pickled (and sent) as the plain wire dict

    # ------------------------------------------------------------------ fields

    @property
    def name(self) -> str:
        return str(self["task"])

    @property
    def args(self) -> list[Any]:
        return list(self["args"])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self["kwargs"])

    @property
    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = self["options"]
        return opts

    @property
    def immutable(self) -> bool:
        return bool(self["immutable"])

    @property
    def id(self) -> str | None:
        tid = self.options.get("task_id")
        return str(tid) if tid else None

    def __repr__(self) -> str:
        parts = [repr(a) for a in self["args"]] + [f"{k}={v!r}" for k, v in self["kwargs"].items()]
        return f"{self.name}({', '.join(parts)})"

    # ------------------------------------------------------------------ building

    def clone(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature:
        """A copy; ``args`` go first (unless immutable), ``kwargs``/``options`` merged in."""
        new = copy.deepcopy(dict(self))
        if not self.immutable:
            new["args"] = list(args) + list(new["args"])
            new["kwargs"] = {**new["kwargs"], **dict(kwargs or {})}
        new["options"] = {**new["options"], **options}
        return _rebuild(new, self.app)

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set options (``queue``, ``countdown``, ``task_id``...) in place; returns self."""
        if immutable is not None:
            self["immutable"] = bool(immutable)
        self.options.update(options)
        return self

    def link(self, callback: Mapping[str, Any]) -> Mapping[str, Any]:
        """Apply ``callback`` with this task's result when it succeeds."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def on_error(self, errback: Mapping[str, Any]) -> Mapping[str, Any]:
        """Apply ``errback`` when this task fails."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def freeze(self) -> str:
        """Give the signature its task id now (the result's id before sending)."""
        return str(self.options.setdefault("task_id", str(uuid.uuid4())))

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]  # chain, not merge
        from amqptool.client.canvas import chain

        if not isinstance(other, Mapping):
            return NotImplemented
        return chain(self, other, app=self.app or getattr(other, "app", None))

    def __ror__(self, other: Any) -> Signature:  # type: ignore[override]  # a dict | Signature
        from amqptool.client.canvas import chain

        if not isinstance(other, Mapping):
            return NotImplemented
        return chain(other, self, app=self.app)

    # ------------------------------------------------------------------ sending

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Send it (with ``args`` prepended); returns an AsyncResult (a GroupResult for groups)."""
        from amqptool.client.canvas import apply

        return apply(self.clone(args, kwargs, **options))


def _rebuild(data: Mapping[str, Any], app: Client | None) -> Signature:
    return Signature(
        str(data["task"]),
        data.get("args") or (),
        data.get("kwargs"),
        data.get("options"),
        immutable=bool(data.get("immutable")),
        subtask_type=data.get("subtask_type"),
        app=app,
    )


def maybe_signature(value: Any, app: Client | None = None) -> Signature:
    """A Signature from a Signature or its wire dict (nested canvases included)."""
    if isinstance(value, Signature):
        if app is not None and value.app is None:
            value.app = app
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("task"), str):
        raise TypeError(f"not a signature: {value!r}")
    sig = _rebuild(value, app)
    tasks = sig["kwargs"].get("tasks")
    if isinstance(tasks, Iterable) and not isinstance(tasks, str | bytes | Mapping):
        sig["kwargs"]["tasks"] = [maybe_signature(t, app) for t in tasks]
    return sig
