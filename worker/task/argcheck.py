"""Does a call fit a task's ``run``? (Celery's ``typing``: checked before sending.)"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ArgCheck"]


class ArgCheck:
    """A fast check that ``args``/``kwargs`` fit a callable (falls back to Signature.bind)."""

    def __init__(self, fun: Callable[..., Any]) -> None:
        try:
            self.sig: inspect.Signature | None = inspect.signature(fun)
        except (TypeError, ValueError):  # builtins without a signature: accept anything
            self.sig = None
            return
        params = list(self.sig.parameters.values())
        kinds = inspect.Parameter
        positional = [
            p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        self.varargs = any(p.kind is kinds.VAR_POSITIONAL for p in params)
        self.max_pos = len(positional)
        self.min_pos = sum(1 for p in positional if p.default is kinds.empty)
        self.required_kwonly = any(
            p.kind is kinds.KEYWORD_ONLY and p.default is kinds.empty for p in params
        )

    def problem(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        if self.sig is None:
            return None
        if not kwargs and not self.required_kwonly:
            n = len(args)
            if n >= self.min_pos and (self.varargs or n <= self.max_pos):
                return None
        try:
            self.sig.bind(*args, **kwargs)
        except TypeError as exc:
            return str(exc)
        return None
