"""Key-value store behind the cache, throttling, idempotency keys and auth state.

Two backends behind one small interface: Redis when ``EDUFLOW_REDIS_URL`` is set, an
in-process TTL store otherwise (embedded default). Every key starts with ``eduflow:``.
Backend failures raise ``StoreUnavailable``; each caller decides whether that means
"serve from the database" (cache) or "fail closed" (idempotency keys).

Key scheme of the response cache (see ``eduflow/api/response_cache.py``):

- ``eduflow:gen:epoch``, ``eduflow:gen:catalog``, ``eduflow:gen:course:{id}`` -- generation
  tokens. A catalogue write replaces the catalog token and the course's token after its
  commit; every cached entry records the tokens it was built under and is only served
  while they are current, so a write makes every affected entry unreachable at once,
  list pages included, without a key scan. Tokens are random (never counters), so a lost
  generation key can never bring an old entry back to life.
- ``eduflow:resp:{namespace}:{variant}`` -- encoded response bytes with their ETag.
- ``eduflow:lock:{namespace}:{variant}`` -- the rebuild lock (``SET NX``, short TTL).
- ``eduflow:cache:stats`` -- hash of hits/misses/rebuilds/errors per namespace, summed over
  every server process (``eduflow cache stats``).
"""

from __future__ import annotations

import secrets
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

PREFIX = "eduflow:"


def key(*parts: object) -> str:
    """A namespaced key: ``key("auth", 3)`` -> ``eduflow:auth:3``."""
    return PREFIX + ":".join(str(p) for p in parts)


class StoreUnavailable(Exception):
    """The backing store did not answer in time."""


class Store(Protocol):
    """The operations EduFlow needs from a key-value store."""

    def get(self, key: str) -> bytes | None:
        """The value, or None."""

    def mget(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip (None for absent keys)."""

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (forever when None)."""

    def set_nx(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent; True when this call stored it (a lock)."""

    def delete(self, *keys: str) -> None:
        """Remove keys."""

    def incr(self, key: str, ttl: float | None = None) -> int:
        """Increment a counter; ``ttl`` is set when the counter is created."""

    def ttl(self, key: str) -> float | None:
        """Seconds left, None when the key is absent or has no expiry."""


class MemoryStore:
    """Thread-safe in-process TTL store for the embedded default (one server process)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def _alive(self, k: str, now: float) -> tuple[bytes, float | None] | None:
        item = self._data.get(k)
        if item is not None and item[1] is not None and item[1] <= now:
            del self._data[k]
            return None
        return item

    def get(self, key: str) -> bytes | None:
        """The value, or None."""
        with self._lock:
            item = self._alive(key, time.monotonic())
            return item[0] if item else None

    def mget(self, *keys: str) -> list[bytes | None]:
        """Several values at once."""
        with self._lock:
            now = time.monotonic()
            items = [self._alive(k, now) for k in keys]
            return [item[0] if item else None for item in items]

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)
            if len(self._data) > 100_000:
                self._evict()

    def set_nx(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent."""
        with self._lock:
            if self._alive(key, time.monotonic()) is not None:
                return False
            self._data[key] = (value, time.monotonic() + ttl)
            return True

    def delete(self, *keys: str) -> None:
        """Remove keys."""
        with self._lock:
            for k in keys:
                self._data.pop(k, None)

    def incr(self, key: str, ttl: float | None = None) -> int:
        """Increment a counter."""
        with self._lock:
            now = time.monotonic()
            item = self._alive(key, now)
            if item is None:
                self._data[key] = (b"1", now + ttl if ttl else None)
                return 1
            value = int(item[0]) + 1
            self._data[key] = (str(value).encode(), item[1])
            return value

    def ttl(self, key: str) -> float | None:
        """Seconds left."""
        with self._lock:
            now = time.monotonic()
            item = self._alive(key, now)
            return None if item is None or item[1] is None else item[1] - now

    def keys(self, prefix: str = PREFIX) -> list[str]:
        """Live keys under ``prefix`` (CLI inspection)."""
        with self._lock:
            now = time.monotonic()
            return [k for k in list(self._data) if k.startswith(prefix) and self._alive(k, now)]

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._data.clear()

    def _evict(self) -> None:
        now = time.monotonic()
        for k in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[k]


class RedisStore:
    """Redis-backed store with short timeouts: a slow Redis must not slow the API."""

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client

    def _call(self, fn: str, *args: object, **kwargs: object) -> object:
        import redis as redis_lib

        try:
            return getattr(self.client, fn)(*args, **kwargs)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    def get(self, key: str) -> bytes | None:
        """The value, or None."""
        value = self._call("get", key)
        return value if isinstance(value, bytes) else None

    def mget(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip."""
        values = self._call("mget", list(keys))
        assert isinstance(values, list)
        return [v if isinstance(v, bytes) else None for v in values]

    def keys(self, prefix: str = PREFIX) -> list[str]:
        """Keys under ``prefix`` (``SCAN``, never ``KEYS``: inspection must not block Redis)."""
        import redis as redis_lib

        try:
            found = self.client.scan_iter(match=_glob_escape(prefix) + "*", count=1000)
            return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in found)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        self._call("set", key, value, px=int(ttl * 1000) if ttl else None)

    def set_nx(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent (``SET NX PX``)."""
        return bool(self._call("set", key, value, nx=True, px=max(1, int(ttl * 1000))))

    def delete(self, *keys: str) -> None:
        """Remove keys."""
        if keys:
            self._call("delete", *keys)

    def incr(self, key: str, ttl: float | None = None) -> int:
        """Increment a counter, setting its expiry on creation."""
        pipe = self.client.pipeline()
        pipe.incr(key)
        if ttl:
            pipe.expire(key, max(1, int(ttl)), nx=True)
        try:
            result = pipe.execute()
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(result[0])

    def ttl(self, key: str) -> float | None:
        """Seconds left."""
        value = self._call("pttl", key)
        return None if not isinstance(value, int) or value < 0 else value / 1000


def _glob_escape(text: str) -> str:
    for ch in "\\*?[]":
        text = text.replace(ch, "\\" + ch)
    return text


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis[bytes] | None:
    """The shared Redis client (None on the embedded default)."""
    from eduflow.config import get_settings

    url = get_settings().redis_url
    if not url:
        return None
    import redis as redis_lib

    return redis_lib.Redis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def fence(client: redis.Redis[bytes]) -> None:
    """Return only once Redis has sent the invalidations of this client's last writes.

    Server processes keep values near (``eduflow.api.redis_pipe``) and drop them when
    Redis pushes an invalidation; Redis sends those pushes after the writer's own reply.
    One more round trip closes that gap: Redis writes every pending reply and push out
    before it reads a new command, so once this returns a request caused by the write
    finds the push already waiting in every server process.
    """
    client.ping()


_memory_store = MemoryStore()


@lru_cache(maxsize=1)
def get_store() -> Store:
    """The process's store: Redis when configured, else the in-process one."""
    client = get_redis()
    return RedisStore(client) if client is not None else _memory_store


def reset_store() -> None:
    """Forget clients (tests, and after a fork)."""
    get_store.cache_clear()
    get_redis.cache_clear()
    get_cache_store.cache_clear()
    _memory_store.clear()
    health.reset()
    stats.reset()


# --------------------------------------------------------------------------- response cache

# Redis answers in well under a millisecond; a cache call that takes longer than this is
# treated as an outage and the request is served from the database.
CACHE_TIMEOUT = 0.25
# After a failure the cache is skipped for this long, then one call probes it again.
RETRY_AFTER = 1.0

GEN_EPOCH = key("gen", "epoch")
GEN_CATALOG = key("gen", "catalog")
STATS_KEY = key("cache", "stats")


def course_gen_key(course_id: int) -> str:
    """The generation key of one course (detail and its lesson lists)."""
    return key("gen", "course", course_id)


def new_generation() -> bytes:
    """A fresh, never-reused generation token."""
    return secrets.token_hex(8).encode()


@lru_cache(maxsize=1)
def get_cache_store() -> Store:
    """The store of the response cache: like ``get_store()`` but with the short timeout."""
    from eduflow.config import get_settings

    url = get_settings().redis_url
    if not url:
        return _memory_store
    import redis as redis_lib

    return RedisStore(
        redis_lib.Redis.from_url(
            url,
            socket_timeout=CACHE_TIMEOUT,
            socket_connect_timeout=CACHE_TIMEOUT,
            retry_on_timeout=False,
            health_check_interval=30,
        )
    )


class CacheHealth:
    """Circuit breaker of the cache: one warning per outage, automatic recovery.

    While the backend is down, cache calls are skipped (requests go to the database)
    except one probe every ``RETRY_AFTER`` seconds. The probe replaces the epoch token:
    a write whose invalidation could not reach Redis during the outage must not leave
    a stale entry behind, so nothing cached before the outage is served after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.pending_bump = False
        self._recovering = False

    def reset(self) -> None:
        """Forget any outage (tests)."""
        with self._lock:
            self.down_since = None
            self.retry_at = 0.0
            self.pending_bump = False

    @property
    def healthy(self) -> bool:
        """No known outage and no invalidation waiting to be replayed (hot path)."""
        return self.down_since is None and not self.pending_bump

    def usable(self, namespace: str) -> bool:
        """True when the cache may be used now; after an outage, probes and recovers.

        Blocking (one Redis round trip during recovery): call it from sync code only.
        """
        if self.healthy:
            return True
        if self.down_since is not None and time.monotonic() < self.retry_at:
            self.skipped(namespace)
            return False
        if self._recover():
            return True
        self.failed(namespace, StoreUnavailable("recovery probe failed"))
        return False

    def _recover(self) -> bool:
        try:
            _replace_generations(get_cache_store(), GEN_EPOCH, GEN_CATALOG)
        except StoreUnavailable:
            return False
        with self._lock:
            was_down, self.down_since = self.down_since, None
            self.pending_bump = False
        if was_down is not None:
            from eduflow.logging import get_logger

            get_logger("eduflow.cache").warning(
                "cache_recovered", down_seconds=round(time.monotonic() - was_down, 2)
            )
        return True

    def _recover_in_background(self) -> None:
        """Replay the lost invalidation as soon as Redis answers, even with no traffic here:
        other server processes may be reading the cache meanwhile."""

        def run() -> None:
            while not self.healthy:
                time.sleep(0.1)
                if self._recover():
                    break
            with self._lock:
                self._recovering = False

        with self._lock:
            if self._recovering:
                return
            self._recovering = True
        threading.Thread(target=run, name="eduflow-cache-recovery", daemon=True).start()

    def failed(self, namespace: str, exc: BaseException) -> None:
        """Count a failed call; the first one of an outage logs a warning."""
        stats.record(namespace, "errors")
        now = time.monotonic()
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = now
            self.retry_at = now + RETRY_AFTER
            # Whatever this call was, an invalidation may have been lost with it.
            self.pending_bump = True
        self._recover_in_background()
        if first:
            from eduflow.logging import get_logger
            from eduflow.metrics import CACHE_OUTAGES

            CACHE_OUTAGES.inc()
            get_logger("eduflow.cache").warning(
                "cache_unavailable", error=f"{type(exc).__name__}: {exc}"[:200]
            )

    def skipped(self, namespace: str) -> None:
        """Count a call not made because the cache is down."""
        stats.record(namespace, "errors")


health = CacheHealth()


class CacheStats:
    """Hits/misses/rebuilds/errors per namespace: Prometheus counters of this process,
    plus a Redis hash summed over every process, flushed at most once a second."""

    FLUSH_EVERY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._published: dict[str, int] = {}  # totals already in the Prometheus counters
        self._fields: dict[tuple[str, str], str] = {}
        self._children: dict[str, Any] = {}
        self._last_flush = time.monotonic()

    def reset(self) -> None:
        """Forget unflushed figures (tests)."""
        with self._lock:
            self._pending.clear()
            self._totals.clear()
            self._published.clear()
            self._last_flush = time.monotonic()

    def record(self, namespace: str, kind: str) -> None:
        """Count one event (``kind``: hits, misses, rebuilds, errors); it reaches the
        Prometheus counters with the next :meth:`publish` (cache hits are counted in
        bursts, and each counter increment is a write to a shared file under
        ``--workers N``)."""
        field = self._fields.get((namespace, kind))
        if field is None:
            field = self._fields[(namespace, kind)] = f"{namespace}:{kind}"
        with self._lock:
            self._pending[field] = self._pending.get(field, 0) + 1
            self._totals[field] = self._totals.get(field, 0) + 1

    def publish(self) -> None:
        """Add what was counted since the last call to the Prometheus counters."""
        with self._lock:
            due = {f: n - self._published.get(f, 0) for f, n in self._totals.items()}
            self._published.update(self._totals)
        for field, n in due.items():
            if n <= 0:
                continue
            child = self._children.get(field)
            if child is None:
                from eduflow import metrics

                namespace, kind = field.split(":")
                counter = {
                    "hits": metrics.CACHE_HITS,
                    "misses": metrics.CACHE_MISSES,
                    "rebuilds": metrics.CACHE_REBUILDS,
                    "errors": metrics.CACHE_ERRORS,
                }[kind]
                child = self._children[field] = counter.labels(namespace)
            child.inc(n)

    def local(self) -> dict[str, int]:
        """This process's figures (the embedded default has no shared view)."""
        with self._lock:
            return dict(self._totals)

    def take_due(self, force: bool = False) -> dict[str, int]:
        """The figures to add to the shared hash now (empty until a flush is due)."""
        now = time.monotonic()
        if not force and now - self._last_flush < self.FLUSH_EVERY:
            return {}
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = now
        return pending

    def give_back(self, pending: dict[str, int]) -> None:
        """Keep figures whose flush failed for the next one."""
        with self._lock:
            for field, n in pending.items():
                self._pending[field] = self._pending.get(field, 0) + n

    def flush(self, force: bool = False) -> None:
        """Add the due figures to ``eduflow:cache:stats`` (sync callers)."""
        pending = self.take_due(force)
        if not pending:
            return
        client = get_redis()
        if client is None:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for field, n in pending.items():
                pipe.hincrby(STATS_KEY, field, n)
            pipe.execute()
        except Exception:  # figures are best effort; keep them for the next flush
            self.give_back(pending)


stats = CacheStats()


def _replace_generations(store: Store, *gen_keys: str) -> None:
    if isinstance(store, RedisStore):
        pipe = store.client.pipeline(transaction=False)
        for gen_key in gen_keys:
            pipe.set(gen_key, new_generation())
        import redis as redis_lib

        try:
            pipe.execute()
            fence(store.client)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
    else:
        for gen_key in gen_keys:
            store.set(gen_key, new_generation())


def invalidate_catalog(session: object, course_id: int | None = None) -> None:
    """After the commit, make cached catalogue representations (and ``course_id``'s) unreachable.

    Every service write that changes a course, its lessons or its seats calls this. Several
    calls in one transaction cost one Redis round trip after the commit; a rollback costs none.
    """
    from sqlmodel import Session

    from eduflow.db import on_commit

    assert isinstance(session, Session)
    pending: set[int | None] | None = session.info.get("catalog_invalidations")
    if pending is None:
        pending = session.info["catalog_invalidations"] = set()

        def _bump() -> None:
            targets = session.info.pop("catalog_invalidations", set())
            bump_catalog_generations(*targets)

        on_commit(session, _bump)
    pending.add(course_id)


def bump_catalog_generations(*course_ids: int | None) -> None:
    """Replace the generation tokens of the catalogue (and of each course given; ``None``
    or no course at all: every course), so every affected cached entry is unreachable.

    When Redis cannot be reached the bump is remembered: the first successful cache call
    afterwards replaces the epoch, which covers every entry.
    """
    keys_to_bump = [GEN_CATALOG]
    if not course_ids or None in course_ids:
        keys_to_bump.append(GEN_EPOCH)
    keys_to_bump += [course_gen_key(c) for c in course_ids if c is not None]
    if not health.usable("catalog"):
        health.pending_bump = True
        return
    try:
        _replace_generations(get_cache_store(), *keys_to_bump)
    except StoreUnavailable as exc:
        health.failed("catalog", exc)
