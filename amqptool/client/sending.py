"""How the client hands task messages to the broker, with publisher confirms either way.

Two ways, chosen with ``Client(confirm=...)``:

- ``"each"`` (the default): ``send_task`` returns once the broker confirmed its message (one
  round trip per call). ``send_many`` / ``group`` / canvas publishes always work like this, a
  batch at a time: :meth:`Sender._publish_all` pipelines them (up to :data:`CONFIRM_WINDOW` in
  flight) and returns when all are confirmed.
- ``"pipelined"``: ``send_task`` publishes and returns without waiting. Its message stays in a
  window of unconfirmed messages (at most :data:`CONFIRM_WINDOW`; a full window waits for the
  oldest half to be confirmed first) on a confirm channel of its own. Confirms are read
  without waiting (what has arrived) every :data:`READ_EVERY` calls, and whenever the client
  waits. The message is written to the socket with the ones that follow it, at the latest
  :data:`WRITE_DELAY` later: by a later call, or, when none follows, by the client's writer
  thread (started on first use, it looks every :data:`WRITE_CHECK` s while there is work, then
  sleeps until woken; it only writes, under the client's lock). One ``send()`` for many
  messages is most of what makes this mode fast.

Nothing the broker refuses is ever silent in pipelined mode. A nack (a full ``x-max-length``
queue with ``reject-publish``, a quorum queue without a leader), a message the broker closed
the channel over (an exchange gone, a size over its limit), or one that stayed unconfirmed
raises, naming the task id(s), at the first of: the next ``send_task`` (which then sends
nothing), :meth:`Sender.flush`, ``close()`` / leaving ``with Client(...)``, and
``AsyncResult.get()`` of that task (which first waits for its message's confirm). Each refusal
is raised once by ``send_task`` / ``flush`` / ``close``; ``get()`` of a refused task always
raises it. A body over the broker's ``max_message_size`` is refused by ``send_task`` itself,
before anything is sent, as in ``"each"`` mode.

Connection loss. The window survives it: on the next connection (at the next ``send_task``,
``flush``, ``get()`` of an unconfirmed task or ``close``) every message still unconfirmed is
sent again, after its queue and the result queue are declared again, through
:meth:`~amqptool.transport.ConfirmedPublisher.rebind` (the machinery ``send_many`` and the
worker use): at-least-once, a message may arrive twice (the broker may have taken it before the
loss) but never not at all. Reconnecting follows the call's ``retry_policy``; when it gives up,
:class:`~amqptool.errors.ConnectionFailedError` names the tasks still unconfirmed, which stay in
the window for the next try, except at ``close()``, which drops them after naming them.

End with ``flush()`` or ``close()`` (or a ``with`` block): a process that exits without them
never learns about messages still unconfirmed (a connection lost just before may have
swallowed them). The process-wide ``default_client()`` is closed at exit.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from amqptool.client.link import ClientLink
from amqptool.client.options import RetryPolicy
from amqptool.client.refused import check_confirm_mode, name_ids, refusal, task_id_of
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.errors import (
    AmqpToolError,
    BrokerError,
    ConnectionFailedError,
    MessageTooLargeError,
    PublishError,
    UnconfirmedError,
)

if TYPE_CHECKING:
    from amqptool.celeryconf.routing import Destination
    from amqptool.codec.envelope import Envelope
    from amqptool.transport import ConfirmedPublisher, Pending

__all__ = ["CONFIRM_WINDOW", "Sender", "check_confirm_mode"]

log = logging.getLogger("amqptool.client")

CONFIRM_WINDOW = 1000  # most messages in flight (unconfirmed) at once
READ_EVERY = 64  # pipelined send_task reads confirms on every 64th call (and when waiting)
WRITE_DELAY = 0.002  # s: a pipelined message left queued this long is written at the next look
WRITE_CHECK = 0.005  # s: how often the writer thread looks while publishing goes on
IDLE_CHECKS = 100  # looks with nothing queued before the writer thread sleeps until woken
MAX_KEPT_REFUSALS = 10_000  # refused messages kept by task id for handles made later by id
DEFAULT_POLICY = RetryPolicy()

T = TypeVar("T")


class Sender(ClientLink):
    """Publishing for :class:`~amqptool.client.Client`: batches, and the pipelined window."""

    publish_timeout: float | None
    confirm: str
    results: object  # the ResultSource: this client itself for rpc://
    _since_read: int  # pipelined send_task calls since confirms were last read
    _unwritten_since: float | None  # when a message was first left queued, not written
    _writer_wake: threading.Event
    _writer: threading.Thread | None
    _send_now: Callable[[Any], None]  # amqptool.transport.coalesce.send_now, once imported

    @property
    def rpc(self) -> bool:
        """True when results come back over the broker (``rpc://``, the default)."""
        return self.results is self

    @property
    def unconfirmed(self) -> int:
        """Messages ``send_task`` sent (``confirm="pipelined"``) whose confirm was not read yet."""
        pub = self._window
        return pub.in_flight if pub is not None else 0

    # ------------------------------------------------------------------ batches

    def _publish_all(
        self,
        items: Sequence[tuple[TaskMessage, Destination]],
        *,
        serializer: str,
        compression: str | None,
        want_results: bool,
        retry: bool,
        policy: RetryPolicy,
        timeout: float | None = None,
    ) -> None:
        """Publish messages pipelined (up to :data:`CONFIRM_WINDOW` in flight) and return when
        the broker confirmed them all. After a connection failure only the unconfirmed ones
        are sent again (so a message may arrive twice, never not at all)."""
        envelopes = [
            encode_task(msg, serializer=serializer, compression=compression, **dest.target)
            for msg, dest in items
        ]
        confirmed = [False] * len(envelopes)
        wait = self.publish_timeout if timeout is None else timeout

        def op() -> None:
            conf = self._confirmer()
            limit = conf.max_message_size
            for env, msg_queue in zip(envelopes, items, strict=True):
                if len(env.body) > limit:
                    from amqptool.transport.confirms import too_large

                    err = too_large(env, limit)
                    err.message = f"task {msg_queue[0].task!r}: {err.message}"
                    raise err
            if want_results:
                self._ensure_result_queue()
            for _msg, dest in items:
                if dest.queue is not None:
                    self._declare_task_queue(dest.queue)
            flying: list[tuple[int, Pending]] = []
            try:
                for index, env in enumerate(envelopes):
                    if confirmed[index]:
                        continue
                    flying.append((index, conf.publish(env)))
                    if conf.in_flight >= CONFIRM_WINDOW:
                        _settle(conf, flying, confirmed, wait, CONFIRM_WINDOW // 2)
                _settle(conf, flying, confirmed, wait, 0)
            except PublishError as exc:
                if exc.reply_text == "NACK":
                    # On a cluster a quorum queue nacks while it has no leader, and a channel
                    # opened meanwhile may go on nacking: publish on a fresh one next time.
                    self._confirms = None
                    conf.close()
                raise

        what = f"publish task {items[0][0].task!r}" if len(items) == 1 else "publish tasks"
        self._retrying(what, op, retry=retry, policy=policy)

    # ------------------------------------------------------------------ pipelined

    def _window_publisher(self, *, poll: bool = True) -> ConfirmedPublisher:
        """The pipelined window's publisher on the open connection (reconnecting if needed;
        after a loss its unconfirmed messages are sent again). ``_io`` held."""
        conn = self._connection(poll=poll)
        pub = self._window
        if pub is None:
            from amqptool.transport import ConfirmedPublisher
            from amqptool.transport.coalesce import send_now

            self._send_now = send_now  # bound once: an import statement per call shows
            pub = self._window = ConfirmedPublisher(conn, keep_failed=True)
        elif pub.connection is not conn:
            again = pub.unconfirmed()
            if again:
                log.warning("sending again %d unconfirmed task message(s)", len(again))
                if self.rpc:
                    self._ensure_result_queue()
                for item in again:
                    queue = item.data[1] if isinstance(item.data, tuple) else None
                    if queue is not None:
                        self._declare_task_queue(queue)
            self._window_nacked = False  # a new channel anyway
            pub.rebind(conn)
        if self._window_nacked and not pub.in_flight:
            # As in _publish_all: after a nack, go on on a fresh channel (once it is settled).
            self._window_nacked = False
            pub.close()
        return pub

    def _report_refused(self, pub: ConfirmedPublisher) -> None:
        """Raise (once) for what the broker refused since the last report. ``_io`` held."""
        failed = pub.failed
        if not failed:
            return
        pub.failed = []
        if any(getattr(item.error, "reply_text", None) == "NACK" for item in failed):
            self._window_nacked = True
        self._remember_refused(failed)
        raise refusal(failed)

    def _remember_refused(self, items: Iterable[Pending]) -> None:
        """Keep refused messages by task id, so a result handle made later by id (Client.
        AsyncResult) raises the refusal too; the oldest go past MAX_KEPT_REFUSALS."""
        kept = self._refused
        for item in items:
            kept[task_id_of(item)] = item
        while len(kept) > MAX_KEPT_REFUSALS:
            del kept[next(iter(kept))]

    def _send_pipelined(
        self,
        msg: TaskMessage,
        dest: Destination,
        env: Envelope,
        *,
        want_results: bool,
        retry: bool,
        policy: RetryPolicy,
    ) -> Pending:
        """Hand ``env`` to the window and return without waiting for its confirm. Raises,
        sending nothing, for what the broker refused before (see the module doc)."""

        handed: list[Pending] = []

        def op() -> Pending:
            # No read first: reads happen every READ_EVERY calls, after the publish below
            # (confirms, nacks, a close: a message a lost connection swallowed is resent).
            pub = self._window_publisher(poll=False)
            if handed:  # a retry after the read failed: the rebind above sent it again
                pub.connection.process_events(0)
                return handed[0]
            self._report_refused(pub)
            if want_results:
                self._ensure_result_queue()
            queue = dest.queue
            if queue is not None and queue.name not in self._declared:
                self._declare_task_queue(queue)
            if pub.in_flight >= CONFIRM_WINDOW:
                self._wait_window(pub, pub.unconfirmed()[: CONFIRM_WINDOW // 2], None)
                self._report_refused(pub)
            try:  # checks the size against the broker's limit first: nothing sent if over
                handed.append(pub.publish(env, data=(msg.id, queue)))
            except MessageTooLargeError as err:
                err.message = f"task {msg.id} ({msg.task!r}): {err.message}"
                err.args = (err.message,)
                raise
            self._since_read += 1
            now = time.monotonic()
            if self._since_read >= READ_EVERY:
                self._since_read = 0
                self._unwritten_since = None
                pub.connection.process_events(0)  # read what arrived; writes queued ones too
            elif self._unwritten_since is None:
                self._unwritten_since = now
                self._wake_writer()
            elif now - self._unwritten_since >= WRITE_DELAY:
                self._unwritten_since = None
                self._send_now(pub.connection)
            return handed[0]

        return self._locked_call(f"publish task {msg.task!r}", op, retry=retry, policy=policy)

    # ------------------------------------------------------------------ write-behind

    def _reset_after_fork(self) -> None:
        super()._reset_after_fork()
        self._since_read = 0
        self._unwritten_since = None
        self._writer_wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._refused: dict[str, Pending] = {}

    def _wake_writer(self) -> None:
        """A message is left queued: make sure it is written within milliseconds even if no
        call follows (the writer thread, started on first use, does it)."""
        if self._writer_wake.is_set():
            return  # the writer is awake and looking
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=_write_behind,
                args=(weakref.ref(self), self._writer_wake),
                name="amqptool-client-writer",
                daemon=True,
            )
            self._writer.start()
        self._writer_wake.set()

    def _write_queued(self) -> None:
        """The writer thread: put what publishes left queued on the wire. Never waits for the
        client's lock: whoever holds it is using the connection (a publishing call writes
        within WRITE_DELAY itself, any read or wait writes too); the next look tries again."""
        if not self._io.acquire(blocking=False):
            return
        try:
            if self._unwritten_since is None:
                return
            self._unwritten_since = None
            conn = self._conn
            if conn is None or not conn.is_open:
                return  # what was queued went with it; the window resends it on reconnect
            from amqptool.transport.coalesce import send_now

            try:
                send_now(conn)
            except Exception as exc:  # the next call on the connection reports it
                log.debug("writing queued messages failed: %s", exc)
        finally:
            self._io.release()

    def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stopped = True  # type: ignore[attr-defined]  # read by _write_behind
            self._writer_wake.set()  # that thread's event: it wakes and ends
            self._writer_wake = threading.Event()  # a client used again gets a new writer

    def _wait_window(
        self, pub: ConfirmedPublisher, items: Iterable[Pending] | None, timeout: float | None
    ) -> None:
        """Wait for the confirms of ``items`` (None: all in flight). Refusals are left in
        ``pub.failed`` for :meth:`_report_refused`; past the timeout, UnconfirmedError."""
        wait = self.publish_timeout if timeout is None else timeout
        try:
            pub.wait(items, timeout=wait)
        except UnconfirmedError as exc:
            left = [task_id_of(item) for item in pub.unconfirmed()]
            exc.message = f"{exc.message} (tasks {name_ids(left)})"
            exc.args = (exc.message,)
            raise
        except BrokerError:
            pass  # a refused message: kept in pub.failed, raised by the caller

    def _locked_call(
        self,
        what: str,
        op: Callable[[], T],
        *,
        retry: bool,
        policy: RetryPolicy,
        closing: bool = False,
    ) -> T:
        """``_retrying`` that names the window's unconfirmed tasks when it gives up."""
        try:
            return self._retrying(what, op, retry=retry, policy=policy)
        except ConnectionFailedError as exc:
            pub = self._window
            left = [task_id_of(item) for item in pub.unconfirmed()] if pub is not None else []
            if left:
                fate = "dropped: the client is closing" if closing else "kept to send again"
                exc.message = (
                    f"{exc.message}; {len(left)} task(s) sent but not confirmed, "
                    f"{fate}: {name_ids(left)}"
                )
                exc.args = (exc.message,)
            raise

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every task ``send_task`` sent is confirmed by the broker.

        Only ``confirm="pipelined"`` leaves anything to wait for (in ``"each"`` mode every call
        already waited). Raises what the broker refused (one line naming the task ids, see
        :mod:`amqptool.client.sending`); past ``timeout`` (None: the client's
        ``publish_timeout``) :class:`~amqptool.errors.UnconfirmedError` naming the tasks still
        unconfirmed, which stay in the window. A lost connection is reopened and the
        unconfirmed messages sent again (default retry policy).
        """
        self._check_fork()
        self._flush(timeout, closing=False)

    def _flush(self, timeout: float | None, *, closing: bool) -> None:
        if self._window is None:
            return

        def op() -> None:
            pub = self._window_publisher()
            self._wait_window(pub, None, timeout)
            self._report_refused(pub)

        what = "close: flush" if closing else "flush"
        self._locked_call(what, op, retry=True, policy=DEFAULT_POLICY, closing=closing)

    def _confirm_sent(self, item: Pending, timeout: float | None) -> None:
        """Before ``AsyncResult.get()``: wait for ``item``'s confirm; raise if refused."""

        def op() -> None:
            pub = self._window_publisher()
            if not item.done:
                self._wait_window(pub, [item], timeout)
            if item.error is not None:
                if pub.failed and item in pub.failed:
                    pub.failed.remove(item)  # reported here: not again by send_task / flush
                    self._remember_refused([item])
                raise refusal([item])

        if not item.done or item.error is not None:
            self._locked_call("confirm", op, retry=True, policy=DEFAULT_POLICY)

    def _sent_hook(self, task_id: str) -> Callable[[float | None], None] | None:
        """For a result handle made by id: the confirm wait of that task, if still pending."""
        if self._window is None:
            return None
        with self._locked():
            pub = self._window
            refused = self._refused.get(task_id)
            pending = [*pub.unconfirmed(), *(pub.failed or [])] if pub is not None else []
            for item in [refused] if refused is not None else pending:
                if task_id_of(item) == task_id:
                    return functools.partial(self._confirm_sent, item)
        return None

    def _settle_on_close(self) -> AmqpToolError | None:
        """At close: flush what is in flight; the error (if any) for close() to raise."""
        pub = self._window
        if pub is None or not (pub.in_flight or pub.failed):
            return None
        try:
            self._flush(None, closing=True)
        except UnconfirmedError as exc:
            exc.message = f"{exc.message}; the client closed without their confirms"
            exc.args = (exc.message,)
            return exc
        except AmqpToolError as exc:
            return exc
        return None


def _write_behind(ref: weakref.ref[Sender], wake: threading.Event) -> None:
    """The writer thread of a pipelined client. Woken when a publish leaves its message queued,
    it then looks every WRITE_CHECK s (while publishing goes on, the publishing calls write
    themselves, every WRITE_DELAY) and writes what waited WRITE_DELAY or more; after
    IDLE_CHECKS looks with nothing queued it sleeps until woken again. Ends when the client
    is closed or gone."""
    me = threading.current_thread()
    while not getattr(me, "stopped", False):
        if not wake.wait(1.0):
            if ref() is None:
                return
            continue
        idle = 0
        while True:
            time.sleep(WRITE_CHECK)
            sender = ref()
            if sender is None or getattr(me, "stopped", False):
                return
            since = sender._unwritten_since
            if since is not None:
                idle = 0
                if time.monotonic() - since >= WRITE_DELAY:
                    sender._write_queued()
            else:
                idle += 1
                if idle >= IDLE_CHECKS:
                    wake.clear()
                    if sender._unwritten_since is None:  # else a publish raced the clear
                        break
                    idle = 0
            del sender


def _settle(
    conf: ConfirmedPublisher,
    flying: list[tuple[int, Pending]],
    confirmed: list[bool],
    timeout: float | None,
    below: int,
) -> None:
    """Wait for confirms until fewer than ``below`` (0: none) of ``flying`` are unsettled."""
    keep = len(flying) - below if below else len(flying)
    conf.wait([item for _, item in flying[:keep]], timeout=timeout)
    for index, item in flying[:keep]:
        confirmed[index] = item.ok
    del flying[:keep]
