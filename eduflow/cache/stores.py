"""Key-value stores behind the cache, throttling, idempotency keys and auth state.

Two backends behind one small interface: Redis when ``EDUFLOW_REDIS_URL`` is set, an
in-process TTL store otherwise (embedded default). Every key starts with ``eduflow:``.
Backend failures raise ``StoreUnavailable``; each caller decides whether that means
"serve from the database" (cache) or "fail closed" (idempotency keys).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis

PREFIX = "eduflow:"
REDIS_TIMEOUT = 0.5  # seconds: a request-path Redis call that takes longer is an outage


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

    def __init__(self, client: redis.Redis) -> None:
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
def get_redis() -> redis.Redis | None:
    """The shared Redis client (None on the embedded default)."""
    from eduflow.config import get_settings, reveal

    url = reveal(get_settings().redis_url)
    if not url:
        return None
    import redis as redis_lib

    from eduflow.cache.outage import guard

    return guard(
        redis_lib.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
            health_check_interval=30,
        )
    )  # fmt: skip


def fence(client: redis.Redis) -> None:
    """Return only once Redis has sent the invalidations of this client's last writes.

    Server processes keep values near (``eduflow.api.redis_pipe``) and drop them when
    Redis pushes an invalidation; Redis sends those pushes after the writer's own reply.
    One more round trip closes that gap: Redis writes every pending reply and push out
    before it reads a new command, so once this returns a request caused by the write
    finds the push already waiting in every server process.
    """
    client.ping()


# One per process, shared by ``get_store()`` and the response cache's store.
memory_store = MemoryStore()


@lru_cache(maxsize=1)
def get_store() -> Store:
    """The process's store: Redis when configured, else the in-process one."""
    client = get_redis()
    return RedisStore(client) if client is not None else memory_store


def reset_store() -> None:
    """Forget clients (tests, and after a fork), and with them the response cache's state."""
    from eduflow.cache.health import get_cache_store, health, stats
    from eduflow.cache.outage import outage

    outage.reset()
    get_store.cache_clear()
    get_redis.cache_clear()
    get_cache_store.cache_clear()
    memory_store.clear()
    health.reset()
    stats.reset()
