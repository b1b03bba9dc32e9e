"""Defining tasks: the :func:`task` decorator, the :class:`Task` base class and the registry.

::

    from worker import task, Task

    @task
    def add(x, y):
        return x + y

    @task(bind=True, name="proj.fetch", max_retries=3, acks_late=True)
    def fetch(self, url):
        ...

    class Resize(Task):          # registered as "<module>.Resize" when the class is created
        name = "proj.resize"
        def run(self, path, width):
            ...
        def on_failure(self, exc, task_id, args, kwargs, einfo):
            ...

Names default to ``module.function`` (Celery's rule). Registering two different tasks under one
name raises :class:`~worker.task.exceptions.AlreadyRegistered` at import time. Calling a task object
runs it here and now; ``delay``/``apply_async`` send it through :mod:`amqptool.client`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from amqptool.codec.results import encode_result, result_body
from amqptool.codec.times import utcnow
from worker.task import context, sending
from worker.task.argcheck import ArgCheck as _ArgCheck
from worker.task.context import Context, ExceptionInfo
from worker.task.exceptions import AlreadyRegistered, NotRegistered, Replaced, Retry
from worker.task.retry_message import publish_retry
from worker.task.retry_plan import (
    DEFAULT_RETRY_BACKOFF_MAX,
    autoretry_countdown,
    max_retries_error,
    plan_retry,
    retry_exception,
    should_autoretry,
)

if TYPE_CHECKING:
    from amqptool.client.signature import Signature

__all__ = ["TASK_OPTIONS", "Task", "TaskRegistry", "registry", "task"]

log = logging.getLogger("worker.task.define")

TASK_OPTIONS = frozenset(
    {
        "name",
        "bind",
        "base",
        "max_retries",
        "default_retry_delay",
        "rate_limit",
        "acks_late",
        "reject_on_worker_lost",
        "ignore_result",
        "track_started",
        "time_limit",
        "soft_time_limit",
        "autoretry_for",
        "dont_autoretry_for",
        "retry_kwargs",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "serializer",
        "queue",
        "typing",
        "disable_error_emails",
        "throws",
        "result_backend",
        "result_expires",
    }
)


class Task:
    """A task type. Subclass it and define :meth:`run`, or use the :func:`task` decorator.

    Class attributes are the options (Celery's names and defaults). One instance per task name
    lives in the registry; :attr:`request` is per thread, so instances are shared safely.
    """

    name: ClassVar[str | None] = None
    abstract: ClassVar[bool] = False
    max_retries: ClassVar[int | None] = 3
    default_retry_delay: ClassVar[float] = 180.0
    rate_limit: ClassVar[str | float | None] = None
    acks_late: ClassVar[bool] = False
    reject_on_worker_lost: ClassVar[bool] = False
    ignore_result: ClassVar[bool] = False
    track_started: ClassVar[bool] = False
    time_limit: ClassVar[float | None] = None
    soft_time_limit: ClassVar[float | None] = None
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    dont_autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    retry_kwargs: ClassVar[dict[str, Any]] = {}
    retry_backoff: ClassVar[bool | float] = False
    retry_backoff_max: ClassVar[int] = DEFAULT_RETRY_BACKOFF_MAX
    retry_jitter: ClassVar[bool] = True
    serializer: ClassVar[str] = "json"
    queue: ClassVar[str | None] = None
    typing: ClassVar[bool] = True
    disable_error_emails: ClassVar[bool] = False  # no error e-mail when it fails
    throws: ClassVar[tuple[type[BaseException], ...]] = ()  # expected: logged without traceback
    result_backend: ClassVar[str | None] = None  # this task's results elsewhere than the worker's
    result_expires: ClassVar[float | None] = None  # seconds (None: the worker's setting)

    _argcheck: _ArgCheck | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__ and not cls.__dict__.get("abstract", False):
            if cls.__dict__.get("name") is None:
                cls.name = f"{cls.__module__}.{cls.__name__}"
            registry.register(cls())

    # ------------------------------------------------------------------ the body

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"task {self.name!r} does not define run()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)

    @property
    def request(self) -> Context:
        """The request being executed by this task on this thread."""
        return context.current(self)

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        """Why ``args``/``kwargs`` don't fit :meth:`run` (None when they do)."""
        if not self.typing:
            return None
        check = self._argcheck
        if check is None:
            check = self._argcheck = _ArgCheck(self.run)
        return check.problem(args, kwargs)

    # ------------------------------------------------------------------ handlers (Celery's)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Called in the pool after the task returned."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        """Called in the pool after the task raised."""

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        """Called in the pool after the task asked to be retried."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Any,
        kwargs: Any,
        einfo: ExceptionInfo | None,
    ) -> None:
        """Called in the pool after any of the above."""

    # ------------------------------------------------------------------ inside a worker

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Send a state (``PROGRESS`` with ``meta``...) to the caller's result queue."""
        req = self.request
        store = req.result_store
        if (
            req.sink is None
            or not (req.reply_to or store)
            or req.ignore_result
            or self.ignore_result
        ):
            if req.sink is None:
                log.debug("update_state(%s) outside a worker: ignored", state)
            return
        tid = task_id or req.id
        assert tid is not None
        body = result_body(tid, state or "PENDING", meta)
        if store is not None:
            store.store(body)
            return
        assert req.reply_to is not None
        env = encode_result(body, reply_to=req.reply_to, correlation_id=tid)
        req.sink.publish(env)

    def send_event(self, type_: str, **fields: Any) -> None:
        """Send a custom task event (``task-<something>``) with this task's ``uuid``."""
        req = self.request
        if req.sink is not None:
            fields.setdefault("uuid", req.id)
            req.sink.event(type_, fields)

    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Republish this task (same id, ``retries + 1``, a new eta) and raise :class:`Retry`.

        Celery's rules: without ``countdown``/``eta`` the retry waits ``default_retry_delay``;
        ``max_retries`` (None: the task's, whose None means forever) counts earlier retries;
        past it the task fails with ``exc`` when given, else MaxRetriesExceededError. Called
        outside a worker it raises ``exc`` (or a Retry) at once. ``options`` are publish
        options of the new message (``queue``, ``priority``, ``expires``, ``time_limit``...).
        """
        req = self.request
        if req.message is None or req.sink is None:
            raise exc if exc is not None else Retry("Task can be retried", None)
        plan = plan_retry(
            req.retries,
            now=utcnow(),
            countdown=countdown,
            eta=eta,
            max_retries=max_retries,
            task_max_retries=self.max_retries,
            default_retry_delay=self.default_retry_delay,
        )
        if plan.exceeded:
            if exc is not None:
                raise exc
            raise max_retries_error(
                str(self.name),
                str(req.id),
                req.args if args is None else args,
                dict(req.kwargs if kwargs is None else kwargs),
            )
        publish_retry(req, args=args, kwargs=kwargs, eta=plan.eta, countdown=None, options=options)
        retry = retry_exception(plan, exc)
        if throw:
            raise retry
        return retry

    def autoretry(self, exc: Exception) -> None:
        """``autoretry_for``: retry (raises Retry, or ``exc`` past max_retries) when ``exc`` is
        one to retry; return otherwise. The countdown follows ``retry_backoff`` (exponential,
        capped by ``retry_backoff_max``, with ``retry_jitter``) or ``retry_kwargs``."""
        if not self.autoretry_for or not should_autoretry(
            exc, self.autoretry_for, self.dont_autoretry_for
        ):
            return
        options = dict(self.retry_kwargs)
        countdown = autoretry_countdown(
            self.request.retries,
            retry_backoff=self.retry_backoff,
            retry_backoff_max=self.retry_backoff_max,
            retry_jitter=self.retry_jitter,
        )
        if countdown is not None:
            options["countdown"] = countdown
        self.retry(exc=exc, **options)

    # ------------------------------------------------------------------ sending (the client)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Send this task through :mod:`amqptool.client` and return its result object.

        Called while a worker runs a task (any task), the new one is that task's child: it
        keeps the family tree (``parent_id``, ``root_id``), is listed in the sender's
        ``children`` and goes through the worker's broker to its default queue.
        """
        from worker.task.eager import conf as eager_conf

        problem = self.check_arguments(tuple(args or ()), dict(kwargs or {}))
        if problem is not None:  # typing=True, as Celery: a wrong call raises before sending
            raise TypeError(f"{self.name}: {problem}")
        if eager_conf.task_always_eager:
            return self.apply(args, kwargs, task_id=options.get("task_id"))
        req = context.current()
        if req.id is not None:  # called from a running task: keep the family tree
            options.setdefault("parent_id", req.id)
            options.setdefault("root_id", req.root_id or req.id)
        if self.queue and "queue" not in options:
            options["queue"] = self.queue
        if self.ignore_result:
            options.setdefault("ignore_result", True)
        if self.serializer != "json":
            options.setdefault("serializer", self.serializer)
        client = sending.client() if req.id is not None else None
        if client is not None and "queue" not in options and sending.default_queue():
            options["queue"] = sending.default_queue()
        client = client or _client_module().default_client()
        result = client.send_task(self.name, tuple(args or ()), dict(kwargs or {}), **options)
        if req.id is not None:
            req.children.append(result.as_tuple())  # the sender's result lists it (children)
        return result

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """``apply_async(args, kwargs)``."""
        return self.apply_async(args, kwargs)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Run here and now; an EagerResult (see :mod:`worker.task.eager`)."""
        from worker.task import eager

        return eager.apply(self, args, kwargs, **options)

    def replace(self, sig: Mapping[str, Any]) -> Exception:
        """Hand the rest of the work to ``sig``, sent in this task's place with its id, group,
        chord, callbacks and chain (``raise self.replace(other.s(...))``; it raises itself)."""
        if self.request.message is None or self.request.sink is None:
            raise RuntimeError("Task.replace() can only be called while a worker runs the task")
        raise Replaced(sig)

    def signature(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """A signature of a call of this task: the wire dict, which can be sent and chained."""
        from amqptool.client.signature import Signature

        inside = context.current().id is not None  # made in a running task: the worker's client
        app = sending.client() if inside else None
        return Signature(str(self.name), args, kwargs, options, immutable=immutable, app=app)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Sequence[Any]) -> Signature:
        """``celery.map``: this task called once per item, in one task."""
        return _client_module().xmap(self.s(), it)  # type: ignore[no-any-return]  # lazy module

    def starmap(self, it: Sequence[Sequence[Any]]) -> Signature:
        """``celery.starmap``: this task called with each item's arguments, in one task."""
        return _client_module().xstarmap(self.s(), it)  # type: ignore[no-any-return]  # lazy

    def chunks(self, it: Sequence[Sequence[Any]], n: int) -> Signature:
        """A group of ``celery.starmap`` tasks over ``n`` items each."""
        return _client_module().chunks(self.s(), it, n)  # type: ignore[no-any-return]  # lazy

    def AsyncResult(self, task_id: str) -> Any:  # Celery's method name
        client = sending.client() if context.current().id is not None else None
        return (client or _client_module().default_client()).AsyncResult(task_id)

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"


def _client_module() -> Any:
    from amqptool import client  # here, not at the top: a task module must not load pika

    return client


def _origin(t: Task) -> str:
    run = type(t).__dict__.get("run")
    fun = getattr(run, "__func__", run)
    code = getattr(fun, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    wrapped = getattr(type(t), "__wrapped__", None)
    if wrapped is not None:
        return f"{wrapped.__module__}.{wrapped.__qualname__}{where}"
    return f"{type(t).__module__}.{type(t).__qualname__}{where}"


class TaskRegistry(Mapping[str, Task]):
    """Task name → the task instance."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, t: Task) -> Task:
        name = t.name
        if not name:
            raise AlreadyRegistered("a task needs a name")
        old = self._tasks.get(name)
        if old is not None and _origin(old) != _origin(t):
            raise AlreadyRegistered(
                f"task name {name!r} is already registered by {_origin(old)}; "
                f"{_origin(t)} cannot register it again",
                hint="give one of them another name with @task(name=...)",
            )
        self._tasks[name] = t
        return t

    def unregister(self, name: str) -> None:
        try:
            del self._tasks[name]
        except KeyError:
            raise NotRegistered(name) from None

    def __getitem__(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise NotRegistered(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._tasks.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks


registry = TaskRegistry()

F = TypeVar("F", bound=Callable[..., Any])


@overload
def task(fun: Callable[..., Any], /) -> Task: ...


@overload
def task(fun: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fun: Callable[..., Any] | None = None, /, **options: Any
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Register a function as a task; with or without options (see :data:`TASK_OPTIONS`)."""
    unknown = set(options) - TASK_OPTIONS
    if unknown:
        raise TypeError("unknown task option(s): " + ", ".join(sorted(unknown)))

    def create(f: Callable[..., Any]) -> Task:
        opts = dict(options)
        base: type[Task] = opts.pop("base", None) or Task
        bind = bool(opts.pop("bind", False))
        name = opts.pop("name", None) or f"{f.__module__}.{f.__name__}"
        for key in ("autoretry_for", "dont_autoretry_for", "throws"):
            if key in opts:
                opts[key] = tuple(opts[key])
        attrs: dict[str, Any] = {
            "name": name,
            "abstract": True,  # registered here, not by __init_subclass__
            "run": f if bind else staticmethod(f),
            "__module__": f.__module__,
            "__qualname__": getattr(f, "__qualname__", f.__name__),
            "__doc__": f.__doc__,
            "__wrapped__": f,
            **opts,
        }
        cls = type(f.__name__, (base,), attrs)
        return registry.register(cls())

    if fun is not None:
        return create(fun)
    return create
