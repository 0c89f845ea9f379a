"""How the response cache copes with its backend: a store with a short timeout, a circuit
breaker that turns an outage into database reads, and the hit/miss figures."""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Any

from eduflow.cache.generations import GEN_CATALOG, GEN_EPOCH, replace_generations
from eduflow.cache.stores import RedisStore, Store, StoreUnavailable, get_redis, key, memory_store

# Redis answers in well under a millisecond; a cache call that takes longer than this is
# treated as an outage and the request is served from the database.
CACHE_TIMEOUT = 0.25
# After a failure the cache is skipped for this long, then one call probes it again.
RETRY_AFTER = 1.0

STATS_KEY = key("cache", "stats")


@lru_cache(maxsize=1)
def get_cache_store() -> Store:
    """The store of the response cache: like ``get_store()`` but with the short timeout."""
    from eduflow.config import get_settings, reveal

    url = reveal(get_settings().redis_url)
    if not url:
        return memory_store
    import redis as redis_lib

    from eduflow.cache.outage import guard

    return RedisStore(
        guard(
            redis_lib.Redis.from_url(
                url,
                socket_timeout=CACHE_TIMEOUT,
                socket_connect_timeout=CACHE_TIMEOUT,
                health_check_interval=30,
            )
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
        from eduflow.db_routing import configured, current_position

        try:
            position = None
            if configured():  # the primary is asked once Redis answers again
                get_cache_store().get(GEN_EPOCH)
                # Past every write whose invalidation the outage lost (see ``db_routing``).
                position = current_position()
            replace_generations(get_cache_store(), GEN_EPOCH, GEN_CATALOG, position=position)
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
    plus a Redis hash summed over every process, flushed at most once a second.

    One tally per event (``record`` is on every cache hit's path); what reached the
    Prometheus counters and what reached the shared hash are kept apart from it, as the
    tallies they had then."""

    FLUSH_EVERY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], int] = {}
        self._published: dict[tuple[str, str], int] = {}  # already in the Prometheus counters
        self._flushed: dict[tuple[str, str], int] = {}  # already in the shared hash
        self._children: dict[tuple[str, str], Any] = {}
        # On time.perf_counter()'s clock, which a request's start is also read on: a hit
        # compares the two (``due_at``) instead of calling anything.
        self.due_at = time.perf_counter() + self.FLUSH_EVERY

    def reset(self) -> None:
        """Forget unflushed figures (tests)."""
        with self._lock:
            self._totals.clear()
            self._published.clear()
            self._flushed.clear()
            self.due_at = time.perf_counter() + self.FLUSH_EVERY

    def record(self, namespace: str, kind: str) -> None:
        """Count one event (``kind``: hits, misses, rebuilds, errors); it reaches the
        Prometheus counters with the next :meth:`publish` (cache hits are counted in
        bursts, and each counter increment is a write to a shared file under
        ``--workers N``)."""
        tally = (namespace, kind)
        with self._lock:
            self._totals[tally] = self._totals.get(tally, 0) + 1

    def _since(self, mark: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """What was counted since ``mark`` was last brought up to date (under the lock),
        bringing it up to date."""
        due = {tally: n - mark.get(tally, 0) for tally, n in self._totals.items()}
        mark.update(self._totals)
        return {tally: n for tally, n in due.items() if n > 0}

    def publish(self) -> None:
        """Add what was counted since the last call to the Prometheus counters."""
        with self._lock:
            due = self._since(self._published)
        for tally, n in due.items():
            child = self._children.get(tally)
            if child is None:
                from eduflow import metrics

                namespace, kind = tally
                counter = {
                    "hits": metrics.CACHE_HITS,
                    "misses": metrics.CACHE_MISSES,
                    "rebuilds": metrics.CACHE_REBUILDS,
                    "errors": metrics.CACHE_ERRORS,
                }[kind]
                child = self._children[tally] = counter.labels(namespace)
            child.inc(n)

    def local(self) -> dict[str, int]:
        """This process's figures (the embedded default has no shared view)."""
        with self._lock:
            return _by_field(self._totals)

    def take_due(self, force: bool = False) -> dict[str, int]:
        """The figures to add to the shared hash now (empty until a flush is due), by
        hash field (``namespace:kind``)."""
        now = time.perf_counter()
        if not force and now < self.due_at:
            return {}
        with self._lock:
            due = self._since(self._flushed)
            self.due_at = now + self.FLUSH_EVERY
        return _by_field(due)

    def give_back(self, pending: dict[str, int]) -> None:
        """Keep figures whose flush failed for the next one."""
        with self._lock:
            for field, n in pending.items():
                namespace, _, kind = field.partition(":")
                tally = (namespace, kind)
                self._flushed[tally] = self._flushed.get(tally, 0) - n

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


def _by_field(tallies: dict[tuple[str, str], int]) -> dict[str, int]:
    """Tallies by their field in the shared hash (``namespace:kind``)."""
    return {f"{namespace}:{kind}": n for (namespace, kind), n in tallies.items()}


stats = CacheStats()


def reset_store() -> None:
    """Forget clients (tests, and after a fork), and with them the response cache's state."""
    from eduflow.cache.outage import outage
    from eduflow.cache.stores import get_store

    outage.reset()
    get_store.cache_clear()
    get_redis.cache_clear()
    get_cache_store.cache_clear()
    memory_store.clear()
    health.reset()
    stats.reset()
