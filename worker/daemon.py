"""The worker you can drive: :class:`Worker` with ``start`` / ``stop`` / ``join`` and ``run``.

In a test::

    with Worker("tests.peers.amqptool_tasks", settings=url, pool="threads", queues=[q]) as w:
        ...  # started and consuming; stopped (warm) and joined on exit

From the command line ``amqptool worker`` calls :meth:`Worker.run` on the main thread with
signal handling on.

**Shutdown.** The first SIGTERM or SIGINT (or :meth:`Worker.stop`, or the ``shutdown`` control
command) is a *warm* shutdown: consumers are cancelled, prefetched tasks that have not started
are rejected back to their queue (``requeue=True``), running tasks finish and are acked, then
``worker-offline`` is sent and :meth:`run` returns 0. A second signal (or SIGQUIT, or
``stop(cold=True)``) is a *cold* shutdown: the connection is closed at once, so every unacked
message — prefetched ones and running ``acks_late`` tasks — goes back to the queue; pool
processes are terminated; :meth:`run` returns 1. Early-acked running tasks are not re-run.

**Scheduling options** (the scheduling issue): ``eta_park_threshold`` (seconds; an ETA further
away is parked on the broker, :mod:`worker.runtime.pipeline.eta_stage`; None never parks),
``time_limit`` / ``soft_time_limit`` (worker defaults, :mod:`worker.policy.time_limits` says what
each pool enforces), ``max_tasks_per_child`` (prefork), ``statedb`` (a file keeping the revoked ids
across restarts), ``mingle`` (learn the running workers' revokes at startup,
:mod:`worker.runtime.mingle`), ``beat`` and ``schedule_file`` (run the periodic tasks from this
worker, :mod:`worker.beat.embedded`; one per cluster).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

from amqptool.errors import UsageError
from amqptool.settings import BrokerSettings
from worker.beat.embedded import EmbeddedBeat
from worker.celery_app import WorkerTasks, find_app, import_target, user_task_names
from worker.config import WorkerConfig
from worker.policy.eta import DEFAULT_PARK_THRESHOLD
from worker.policy.queues import QueueSpec
from worker.pool import create_pool
from worker.pool.results import check_backend
from worker.runtime.consumer import Consumer
from worker.task import periodic, sending
from worker.task.define import Task, registry

__all__ = ["Worker", "import_app"]

log = logging.getLogger("worker")


def import_app(modules: str | Sequence[str] | None) -> list[str]:
    """Import the task modules (``-A``, see :mod:`worker.celery_app`); a failure is a
    UsageError naming the module."""
    if modules is None:
        return []
    names = [modules] if isinstance(modules, str) else list(modules)
    for name in names:
        find_app(name)
    return names


class Worker:
    """A Celery-compatible worker (see the module docstring for its lifecycle)."""

    def __init__(
        self,
        app_module: str | Sequence[str] | None = None,
        *,
        settings: BrokerSettings | str | None = None,
        queues: Sequence[str] | str | None = None,
        pool: str = "prefork",
        concurrency: int | None = None,
        prefetch_multiplier: int = 4,
        events: bool = False,
        nodename: str | None = None,
        accept_content: Sequence[str] | str | None = None,
        heartbeat_interval: float = 2.0,
        install_signal_handlers: bool = False,
        connect_retries: int | None = 100,
        tasks: Mapping[str, Task] | None = None,
        disable_control: Sequence[str] | str | None = None,
        eta_park_threshold: float | None = DEFAULT_PARK_THRESHOLD,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        max_tasks_per_child: int | None = None,
        statedb: str | None = None,
        mingle: bool = True,
        beat: bool = False,
        schedule_file: str | None = None,
        queue_specs: Mapping[str, QueueSpec] | None = None,
        resolved: Mapping[str, tuple[Any, str]] | None = None,
        disable_rate_limits: bool = False,
        result_backend: str | None = None,
        result_expires: float | None = 86_400.0,
    ) -> None:
        names = [app_module] if isinstance(app_module, str) else list(app_module or ())
        self.celery_app = import_target(names)
        self.app_modules = names
        if self.celery_app is not None:
            from worker.celery_conf import app_queue_specs, default_queue_names

            if queue_specs is None:
                queue_specs = app_queue_specs(self.celery_app)
            if queues is None:
                queues = default_queue_names(self.celery_app)
        if not isinstance(settings, BrokerSettings):
            settings = BrokerSettings.from_url(settings)
        self.config = WorkerConfig.build(
            settings,
            nodename=nodename,
            queues=queues,
            pool=pool,
            concurrency=concurrency,
            prefetch_multiplier=prefetch_multiplier,
            events=events,
            accept_content=accept_content,
            heartbeat_interval=heartbeat_interval,
            connect_retries=connect_retries,
            disable_control=disable_control,
            eta_park_threshold=eta_park_threshold,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            max_tasks_per_child=max_tasks_per_child,
            statedb=statedb,
            mingle=mingle,
            beat=beat,
            schedule_file=schedule_file,
            queue_specs=queue_specs,
            resolved=resolved,
            disable_rate_limits=disable_rate_limits,
            result_backend=result_backend,
            result_expires=result_expires,
        )
        check_backend(self.config.result_backend, self.config.result_expires)
        routing = {k: v for k, (v, _source) in resolved.items()} if resolved else None
        sending.configure(
            settings, self.config.queues[0], self.config.result_backend, config=routing
        )
        import worker.pool.builtins  # noqa: F401  # Celery's built-in tasks (celery.group, ...)

        if tasks is None:
            tasks = registry if self.celery_app is None else WorkerTasks(registry, self.celery_app)
            if not user_task_names(tasks):
                raise UsageError(
                    f"no tasks to run: -A {','.join(names) or '(none)'} registered none",
                    hint="name a module that defines tasks (or a Celery app) with -A",
                )
        self.tasks: Mapping[str, Task] = tasks
        self.install_signal_handlers = install_signal_handlers
        self.pool = create_pool(
            self.config.pool,
            self.tasks,
            self.config.concurrency,
            lookahead=self.config.prefetch or None,
            max_tasks_per_child=self.config.max_tasks_per_child,
        )
        self.consumer = Consumer(self.config, self.tasks, self.pool)
        self.beat: EmbeddedBeat | None = None
        if self.config.beat:
            self.beat = EmbeddedBeat(
                periodic.registry.entries(),
                settings,
                self.config.nodename,
                default_queue=self.config.queues[0],
                schedule_file=self.config.schedule_file,
            )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.exit_code: int | None = None
        self.on_stopping: Callable[[], None] = lambda: None  # a shutdown signal arrived

    @property
    def nodename(self) -> str:
        return self.config.nodename

    @property
    def connection_name(self) -> str:
        """The ``connection_name`` client property of this worker's broker connection."""
        return self.consumer.link.connection_name

    # ------------------------------------------------------------------ blocking

    def run(self) -> int:
        """Run on this thread until shut down; returns 0 (warm) or 1 (cold)."""
        restore: dict[int, Any] = {}
        if self.install_signal_handlers:
            restore = self._install_signals()
        try:
            if self.beat is not None:
                self.beat.start()
            self.consumer.run()
        finally:
            if self.beat is not None:
                self.beat.stop()
            for signum, old in restore.items():
                signal.signal(signum, old)
        self.exit_code = 1 if self.consumer.cold else 0
        return self.exit_code

    def _install_signals(self) -> dict[int, Any]:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            cold = self.consumer.warm or signum == signal.SIGQUIT
            self.on_stopping()
            self.consumer.request_shutdown(cold=cold, wake=False)

        old: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            old[signum] = signal.signal(signum, on_signal)
        return old

    # ------------------------------------------------------------------ in a thread

    def start(self, timeout: float = 60.0) -> Worker:
        """Run in a background thread; returns once consuming (raises what startup raised)."""
        if self._thread is not None:
            raise RuntimeError("worker already started")

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # reported to start()/join() callers
                self._error = exc
                self.consumer.ready_event.set()
                log.error("worker %s stopped: %s", self.nodename, exc)

        self._thread = threading.Thread(target=target, name=f"worker {self.nodename}", daemon=True)
        self._thread.start()
        if not self.consumer.ready_event.wait(timeout):
            self.stop(cold=True)
            raise TimeoutError(f"worker {self.nodename} did not start within {timeout}s")
        if self._error is not None:
            self._thread.join(5)
            raise self._error
        return self

    def stop(self, *, cold: bool = False) -> None:
        """Ask for a warm (default) or cold shutdown; returns at once (see :meth:`join`)."""
        self.consumer.request_shutdown("stop() called", cold=cold)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if not self.join(30):
            self.stop(cold=True)
            self.join(10)
