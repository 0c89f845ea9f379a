"""The cache layer itself: both stores, generation-based invalidation after commit, the
rebuild lock under concurrent misses, and the fast path's pipelined Redis client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest

from eduflow.cache import responses as response_cache
from eduflow.cache.catalog import bump_catalog_generations, invalidate_catalog
from eduflow.cache.generations import GEN_CATALOG, GEN_EPOCH, course_gen_key
from eduflow.cache.health import get_cache_store, stats
from eduflow.cache.responses import Entry, Plan, get_or_build
from eduflow.cache.stores import MemoryStore, StoreUnavailable


def plan(course_id: int = 1) -> Plan:
    """The plan of a course detail entry."""
    return response_cache.course_detail_plan(course_id)


def builder(body: bytes = b'{"id":1}', calls: list[int] | None = None, delay: float = 0.0) -> Any:
    """A build function that counts its calls."""

    def build(_since: int | None) -> tuple[bytes, bytes]:
        if calls is not None:
            calls.append(1)
        time.sleep(delay)
        return body, b"p"

    return build


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_stores_share_one_interface(backend: str) -> None:
    store: Any = get_cache_store() if backend == "redis" else MemoryStore()
    store.set("eduflow:t:a", b"1", 10)
    assert store.mget("eduflow:t:a", "eduflow:t:b") == [b"1", None]
    assert store.set_nx("eduflow:t:lock", b"x", 10) is True
    assert store.set_nx("eduflow:t:lock", b"y", 10) is False
    assert store.get("eduflow:t:lock") == b"x"
    assert store.incr("eduflow:t:n", 10) == 1 and store.incr("eduflow:t:n") == 2
    assert 0 < store.ttl("eduflow:t:a") <= 10
    assert store.keys("eduflow:t:") == ["eduflow:t:a", "eduflow:t:lock", "eduflow:t:n"]
    store.delete("eduflow:t:a", "eduflow:t:lock")
    assert store.mget("eduflow:t:a", "eduflow:t:lock") == [None, None]


def test_entries_round_trip_and_garbage_is_a_miss() -> None:
    entry = Entry(("eduflow:gen:epoch",), b"abc", b'"e"', b"d:grace", b'{"a":\n1}')
    assert Entry.decode(entry.encode()) == entry
    assert Entry.decode(b"garbage") is None
    assert Entry.decode(b"a\x1fb\nbody") is None


def test_a_hit_follows_a_build_and_a_bump_makes_it_unreachable() -> None:
    calls: list[int] = []
    first, hit = get_or_build(plan(), builder(calls=calls))
    assert not hit and calls == [1]
    again, hit = get_or_build(plan(), builder(calls=calls))
    assert hit and again == first and calls == [1]
    bump_catalog_generations(2)  # another course: still current
    assert get_or_build(plan(), builder(calls=calls))[1] is True
    bump_catalog_generations(1)
    fresh, hit = get_or_build(plan(), builder(b'{"id":1,"v":2}', calls=calls))
    assert not hit and calls == [1, 1] and fresh.body == b'{"id":1,"v":2}'
    assert fresh.etag != first.etag


def test_a_bump_of_every_course_retires_every_entry() -> None:
    get_or_build(plan(1), builder())
    get_or_build(plan(2), builder())
    bump_catalog_generations()
    assert get_or_build(plan(1), builder())[1] is False
    assert get_or_build(plan(2), builder())[1] is False


def test_lost_generation_keys_never_revive_old_entries() -> None:
    get_or_build(plan(), builder(b"old"))
    get_cache_store().delete(GEN_EPOCH, course_gen_key(1))
    entry, hit = get_or_build(plan(), builder(b"new"))
    assert not hit and entry.body == b"new"


def test_invalidation_runs_after_commit_and_never_after_rollback() -> None:
    from eduflow.db import session_scope

    get_or_build(plan(), builder())
    with pytest.raises(RuntimeError), session_scope() as session:
        invalidate_catalog(session, 1)
        raise RuntimeError("rolled back")
    assert get_or_build(plan(), builder())[1] is True
    before = get_cache_store().mget(GEN_CATALOG, course_gen_key(1))
    with session_scope() as session:
        invalidate_catalog(session, 1)
        invalidate_catalog(session, 1)
        assert get_cache_store().mget(GEN_CATALOG, course_gen_key(1)) == before
    assert get_cache_store().mget(GEN_CATALOG, course_gen_key(1)) != before
    assert get_or_build(plan(), builder())[1] is False


def test_concurrent_misses_rebuild_once_and_the_others_wait_for_it() -> None:
    n = 10
    calls: list[int] = []
    results: list[tuple[Entry, bool]] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        barrier.wait()
        results.append(get_or_build(plan(), builder(calls=calls, delay=0.2)))

    before = stats.local().get("course:rebuilds", 0)
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert len(results) == n and len({e for e, _ in results}) == 1
    assert sorted(hit for _, hit in results) == [False] + [True] * (n - 1)
    assert stats.local()["course:rebuilds"] - before == 1


def test_a_failed_build_releases_the_lock_and_caches_nothing() -> None:
    def broken(_since: int | None) -> tuple[bytes, bytes]:
        raise LookupError("no such course")

    with pytest.raises(LookupError):
        get_or_build(plan(), broken)
    assert get_cache_store().get(plan().lock_key) is None
    assert get_or_build(plan(), builder())[1] is False
    assert get_or_build(plan(), builder())[1] is True


def test_a_stuck_rebuilder_only_delays_others_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_cache, "WAIT_FOR_REBUILD", 0.2)
    get_cache_store().set_nx(plan().lock_key, b"someone-else", 30)
    calls: list[int] = []
    started = time.monotonic()
    entry, hit = get_or_build(plan(), builder(calls=calls))
    assert not hit and calls == [1] and entry.body == b'{"id":1}'
    assert 0.2 <= time.monotonic() - started < 2
    assert get_cache_store().get(plan().key) is None  # served, not stored: not the lock owner


def test_the_embedded_store_caches_and_invalidates_too(sqlite_url: str) -> None:
    from eduflow.cache.health import get_cache_store

    assert isinstance(get_cache_store(), MemoryStore)
    get_or_build(plan(), builder())
    assert get_or_build(plan(), builder())[1] is True
    bump_catalog_generations(1)
    assert get_or_build(plan(), builder())[1] is False


def test_a_closed_port_is_an_outage_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from eduflow.cache.health import health
    from tests.conftest import free_port, reset_process_state

    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    try:
        calls: list[int] = []
        for _ in range(3):
            entry, hit = get_or_build(plan(), builder(calls=calls))
            assert not hit and entry.body == b'{"id":1}'
        assert calls == [1, 1, 1] and not health.healthy
        bump_catalog_generations(1)  # must not raise after a commit
        with pytest.raises(StoreUnavailable):
            get_cache_store().get("eduflow:x")
    finally:
        monkeypatch.undo()
        reset_process_state()


# --------------------------------------------------------------------------- fast path client


def test_the_pipelined_client_answers_concurrent_mgets_in_order() -> None:
    from eduflow.cache.near import PipelinedRedis
    from tests.conftest import TEST_REDIS_URL

    store = get_cache_store()
    for i in range(50):
        store.set(f"eduflow:t:{i}", str(i).encode() * (i * 100 + 1), 30)

    async def run() -> list[list[bytes | None]]:
        client = PipelinedRedis(TEST_REDIS_URL, 1.0)
        replies = await asyncio.gather(
            *[client.mget(f"eduflow:t:{i}", "eduflow:t:none") for i in range(50)]
        )
        await client.hincrby_many("eduflow:t:h", {"a": 2, "b": 3})
        client.close()
        return replies

    replies = asyncio.run(run())
    assert replies == [[str(i).encode() * (i * 100 + 1), None] for i in range(50)]
    assert get_cache_store().mget("eduflow:t:0")[0] == b"0"


def test_the_pipelined_client_fails_fast_on_a_silent_or_closed_server() -> None:
    from eduflow.cache.near import PipelinedRedis, RedisPipeError
    from tests.conftest import free_port

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers

    async def ask(url: str) -> float:
        client = PipelinedRedis(url, 0.2)
        started = time.monotonic()
        with pytest.raises(RedisPipeError):
            await client.mget("eduflow:x")
        return time.monotonic() - started

    try:
        assert asyncio.run(ask(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")) < 1.5
        assert asyncio.run(ask(f"redis://127.0.0.1:{free_port()}/0")) < 1.5
    finally:
        silent.close()


def test_password_hashing_runs_below_the_request_loops_priority() -> None:
    """A burst of logins must not starve cached reads of CPU (bcrypt is niced)."""
    import os

    from eduflow import security

    nice = security._hashing_pool().submit(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    )
    # >=: the suite itself may run niced (a thread cannot be less nice than allowed).
    assert nice.result() == security.HASHING_NICE >= os.getpriority(os.PRIO_PROCESS, 0)
    assert security.HASHING_NICE > 0
    assert security.verify_password("pw-123456", security.hash_password("pw-123456", rounds=4))


def test_cache_stats_reach_the_shared_hash_and_the_counters_exactly_once() -> None:
    """Each event tallied once: a flush takes what came since the last one, a failed flush
    gives it back for the next, and the Prometheus counters get each event once."""
    from eduflow.cache.health import CacheStats
    from eduflow.metrics import CACHE_HITS

    figures = CacheStats()
    hits = CACHE_HITS.labels("stats-test")
    start = hits._value.get()
    for _ in range(3):
        figures.record("stats-test", "hits")
    figures.record("stats-test", "misses")
    assert figures.take_due() == {}  # not due yet: at most once a second
    taken = figures.take_due(force=True)
    assert taken == {"stats-test:hits": 3, "stats-test:misses": 1}
    figures.give_back(taken)  # the write failed
    figures.record("stats-test", "hits")
    assert figures.take_due(force=True) == {"stats-test:hits": 4, "stats-test:misses": 1}
    assert figures.take_due(force=True) == {}
    figures.publish()
    figures.publish()
    assert hits._value.get() - start == 4
    assert figures.local() == {"stats-test:hits": 4, "stats-test:misses": 1}
