"""The Redis result backend (``redis://[:password@]host:port/db``, ``rediss://``).

Celery's layout (``docs/results.md``): one key per task, ``celery-task-meta-<id>``, written with
``SETEX`` and, in the same ``MULTI``/``EXEC``, ``PUBLISH`` on a channel named like the key, which
a waiting client subscribes to. Saved groups are ``celery-taskset-meta-<group_id>``. Chords use
Celery's native counter keys under ``celery-taskset-meta-<group_id>``: ``.s`` (size), ``.t``
(size adjustment), ``.j`` (sorted set of header results), ``.d`` (members already counted) and
``.c`` (the claim, ``done`` once the body was sent); the scripts below do the same steps as
Celery's own, so a Celery worker and ours can share one chord.

The ``redis`` package is imported on first use (``pip install amqptool[redis]``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from amqptool.backends.base import Backend, ChordPart
from amqptool.backends.meta import group_key, task_key
from amqptool.codec.results import READY_STATES, SUCCESS
from amqptool.errors import AmqpToolError, ConnectionFailedError, TaskTimeoutError, UsageError

__all__ = ["RedisBackend"]

# KEYS: j t s d g c; ARGV: task id, entry, score, expires, group expires, claim s, claim token.
_PART_RETURN = """
local j, t, s, d, g, c = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('GET', c) == 'done' then return {-1, 0, 0, 0} end
local seen = ARGV[1] .. ':' .. ARGV[3]
if redis.call('SISMEMBER', d, seen) == 0 then
  redis.call('ZADD', j, ARGV[3], ARGV[2])
  redis.call('SADD', d, seen)
end
local count = redis.call('ZCOUNT', j, '-inf', '+inf')
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for _, key in ipairs({j, t, s, d}) do redis.call('EXPIRE', key, ttl) end
  if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', g, tonumber(ARGV[5])) end
end
local diff = redis.call('GET', t)
local size = redis.call('GET', s)
local won = 0
if size and count == tonumber(size) + tonumber(diff or 0) then
  if redis.call('SET', c, ARGV[7], 'NX', 'EX', tonumber(ARGV[6])) then won = 1 end
end
return {count, diff, size, won}
"""

# KEYS: c s; ARGV: token, seconds. Keep (or retake, while the chord is alive) the claim.
_EXTEND = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
if not owner and redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]), 'NX') and 1 or 0
end
return 0
"""

# KEYS: c j t s d; ARGV: token, seconds the 'done' marker lives.
_CLEANUP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], 'done', 'EX', tonumber(ARGV[2])) end
return 1
"""

# KEYS: the task keys; ARGV: expiry (0: none), then each key's value. What one store() does
# per result (SETEX, or SET without expiry, then PUBLISH on the key's channel), for a batch in
# one round trip, atomic as store()'s MULTI/EXEC.
_STORE_MANY = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  if ttl > 0 then redis.call('SETEX', key, ttl, value) else redis.call('SET', key, value) end
  redis.call('PUBLISH', key, value)
end
return #KEYS
"""

log = logging.getLogger("amqptool.backends")

CLAIM_SECONDS = 10  # Celery: twice the 5 s default chord join timeout
DONE_SECONDS = 300


class RedisBackend(Backend):
    scheme = "redis"
    native_chords = True
    batches = True

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise UsageError(f"not a Redis URL: {url!r}")
        self._client: Any = None
        self._store_many: Any = None  # the registered _STORE_MANY script
        try:
            self._pool_args = _pool_from_url(url)
        except ValueError as exc:
            raise UsageError(f"bad Redis URL: {exc}") from None

    # ------------------------------------------------------------------ connection

    @property
    def client(self) -> Any:
        if self._client is None:
            redis = _redis()
            self._client = redis.Redis(connection_pool=self._pool_args())
        return self._client

    def _call(self, what: str, op: Any) -> Any:
        redis = _redis()
        try:
            return op(self.client)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionFailedError(
                f"result backend {self.redacted_url()}: {what}: {exc}",
                hint="is Redis running? check the result backend URL",
            ) from exc

    def check(self) -> None:
        self._call("ping", lambda c: c.ping())

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _ttl(self) -> int:
        return int(self.expires or 0)

    # ------------------------------------------------------------------ results

    def _set(self, task_id: str, doc: dict[str, Any]) -> None:
        self._write("store result", task_key(task_id), self.codec.encode(doc))

    def _write(self, what: str, key: str, value: bytes) -> None:
        self._call(what, lambda c: self._write_pipelined(c, [(key, value)]))

    def store_many(
        self, docs: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Mapping[str, Any], AmqpToolError]]:
        """Store many results in two round trips: one ``MGET`` (a stored SUCCESS is never
        overwritten, as :meth:`store`), then one script that does ``SETEX`` + ``PUBLISH`` for
        each: the keys, values, expiry and channels of one :meth:`store` per document."""
        keys = [task_key(str(doc["task_id"])) for doc in docs]
        current = self._call("get", lambda c: c.mget(keys)) if keys else []
        done: set[str] = set()
        failed: list[tuple[Mapping[str, Any], AmqpToolError]] = []
        writes: list[tuple[str, bytes]] = []
        for key, doc, raw in zip(keys, docs, current, strict=True):
            try:
                if raw is not None and key not in done:
                    stored = self.codec.decode_document(raw)
                    if stored is not None and stored.get("status") == SUCCESS:
                        done.add(key)
                if key in done:
                    continue
                writes.append((key, self.codec.encode(dict(doc))))
            except AmqpToolError as exc:
                failed.append((doc, exc))
                continue
            if doc.get("status") == SUCCESS:
                done.add(key)
        if writes:
            self._call("store results", lambda c: self._write_many(c, writes))
        return failed

    def _write_many(self, client: Any, writes: Sequence[tuple[str, bytes]]) -> None:
        if self._store_many is False:  # this server refused scripts: one transaction instead
            self._write_pipelined(client, writes)
            return
        if self._store_many is None:
            self._store_many = client.register_script(_STORE_MANY)
        keys = [key for key, _ in writes]
        try:
            self._store_many(keys=keys, args=[self._ttl(), *(v for _, v in writes)], client=client)
        except _redis().ResponseError as exc:  # scripting disabled or not allowed (ACL)
            log.warning("Redis refused the result script (%s); storing in transactions", exc)
            self._store_many = False
            self._write_pipelined(client, writes)

    def _write_pipelined(self, client: Any, writes: Sequence[tuple[str, bytes]]) -> None:
        """The same writes as :data:`_STORE_MANY` in one ``MULTI``/``EXEC`` transaction."""
        ttl = self._ttl()
        with client.pipeline() as pipe:
            for key, value in writes:
                if ttl:
                    pipe.setex(key, ttl, value)
                else:
                    pipe.set(key, value)
                pipe.publish(key, value)
            pipe.execute()

    def _get(self, task_id: str) -> dict[str, Any] | None:
        return self.codec.decode_document(self._call("get", lambda c: c.get(task_key(task_id))))

    def _delete(self, task_id: str) -> None:
        self._call("forget", lambda c: c.delete(task_key(task_id)))

    def save_group(self, group_id: str, members: Sequence[Any]) -> None:
        value = self.codec.encode({"result": [[group_id, None], list(members)]})
        self._write("save group", group_key(group_id), value)

    def restore_group(self, group_id: str) -> list[Any] | None:
        doc = self.codec.decode(self._call("get", lambda c: c.get(group_key(group_id))))
        if not isinstance(doc, dict) or not isinstance(doc.get("result"), list):
            return None
        members = doc["result"][1] if len(doc["result"]) == 2 else None
        return list(members) if isinstance(members, list) else None

    def delete_group(self, group_id: str) -> None:
        self._call("delete group", lambda c: c.delete(group_key(group_id)))

    def wait_for(
        self, task_id: str, timeout: float | None = None, interval: float = 0.1
    ) -> dict[str, Any]:
        """Subscribe to the task's channel, then read the key, then wait for a message."""
        key = task_key(task_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self._call("subscribe", lambda c: c.pubsub(ignore_subscribe_messages=True))
        try:
            self._call("subscribe", lambda c: pubsub.subscribe(key))
            doc = self.get(task_id)
            while doc.get("status") not in READY_STATES:
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TaskTimeoutError(
                        f"task {task_id} did not finish within {timeout:g}s "
                        f"(state: {doc.get('status')})"
                    )
                wait = min(left, 1.0)
                msg = self._call("wait", lambda c, w=wait: pubsub.get_message(timeout=w))
                if msg is not None and msg.get("type") == "message":
                    doc = self.codec.decode_document(msg["data"]) or doc
                elif msg is None:
                    doc = self.get(task_id)  # a missed message never stalls the wait
            return doc
        finally:
            with contextlib.suppress(Exception):  # a broken subscription must not hide a result
                pubsub.close()

    # ------------------------------------------------------------------ chords

    def set_chord_size(self, group_id: str, size: int) -> None:
        ttl = self._ttl()

        def prepare(c: Any) -> None:
            c.delete(group_key(group_id, ".c"))
            c.set(group_key(group_id, ".s"), size, ex=ttl or None)

        self._call("chord size", prepare)

    def chord_part_return(
        self, group_id: str, task_id: str, index: int | None, state: str, result: Any
    ) -> ChordPart:
        keys = [group_key(group_id, s) for s in (".j", ".t", ".s", ".d", "", ".c")]
        entry = self.codec.encode([1, task_id, state, result])
        token = uuid.uuid4().hex
        score = "+inf" if index is None else str(index)
        ttl = self._ttl()
        args = [task_id, entry, score, ttl, ttl, CLAIM_SECONDS, token]
        count, _diff, size, won = self._call(
            "chord", lambda c: c.eval(_PART_RETURN, len(keys), *keys, *args)
        )
        if count == -1 or not size or not won:
            return ChordPart(False)
        raw = self._call("chord", lambda c: c.zrange(keys[0], 0, -1))
        results = []
        for item in raw:
            _, tid, st, value = self.codec.decode(item)
            results.append((str(tid), str(st), value))
        extended = self._call(
            "chord",
            lambda c: c.eval(_EXTEND, 2, keys[5], keys[2], token, CLAIM_SECONDS * 2),
        )
        part = ChordPart(bool(extended), results)
        part.token = token
        return part

    def chord_done(self, group_id: str, part: ChordPart) -> None:
        keys = [group_key(group_id, s) for s in (".c", ".j", ".t", ".s", ".d")]
        self._call("chord", lambda c: c.eval(_CLEANUP, 5, *keys, part.token or "", DONE_SECONDS))


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        raise UsageError(
            "the redis result backend needs the redis package",
            hint="pip install 'amqptool[redis]'",
        ) from None
    return redis


def _pool_from_url(url: str) -> Any:
    redis = _redis()
    # Parse now (a bad URL is a usage error at start); connect only on first use.
    redis.ConnectionPool.from_url(url)
    return lambda: redis.ConnectionPool.from_url(url, socket_connect_timeout=5)
