"""The fast path's near cache: values kept in the process, dropped by Redis's own
invalidation pushes, so a read after any acknowledged write never sees the old value."""

from __future__ import annotations

import asyncio
import socket
import threading

import redis

from eduflow.api.redis_pipe import PipelinedRedis
from eduflow.cache.stores import fence
from tests.conftest import TEST_REDIS_URL

KEYS = ("eduflow:t:a", "eduflow:t:b")


def other_client() -> redis.Redis:
    """A second connection, as another server process or the CLI would have."""
    return redis.Redis.from_url(TEST_REDIS_URL)


async def read(client: PipelinedRedis, keys: tuple[str, ...]) -> list[bytes | None]:
    """What the fast path reads: the near cache when it holds every key, else Redis."""
    kept = client.near(keys)
    return kept if kept is not None else await client.mget(*keys, near=True)


async def settle() -> None:
    """Let the loop read what Redis already sent (a request arriving does the same)."""
    for _ in range(3):
        await asyncio.sleep(0.01)


def test_kept_values_answer_until_another_client_changes_them() -> None:
    other = other_client()
    other.set(KEYS[0], b"1")

    async def run() -> None:
        client = PipelinedRedis(TEST_REDIS_URL, 1.0)
        assert client.near(KEYS) is None  # nothing kept before the first read
        assert await client.mget(*KEYS, near=True) == [b"1", None]
        assert client.tracking
        assert client.near(KEYS) == [b"1", None]  # absent keys are kept (and tracked) too
        other.set(KEYS[1], b"2")
        await settle()
        assert client.near(KEYS) is None
        assert client.near(KEYS[:1]) == [b"1"]  # only the changed key was dropped
        assert await read(client, KEYS) == [b"1", b"2"]
        other.delete(KEYS[0])
        await settle()
        assert await read(client, KEYS) == [None, b"2"]
        other.flushdb()
        await settle()
        assert client.kept == {}
        client.close()

    asyncio.run(run())


def test_a_request_that_follows_a_fenced_write_never_reads_the_old_value() -> None:
    """Another process writes and fences (as invalidating writers do), then a request
    arrives over a socket; the read it starts finds the old value dropped -- every time."""
    other = other_client()
    rounds = 300

    async def run() -> list[bytes | None]:
        client = PipelinedRedis(TEST_REDIS_URL, 1.0)
        loop = asyncio.get_running_loop()
        seen: list[bytes | None] = []
        answered = threading.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def handle() -> None:
            seen.append((await read(client, KEYS[:1]))[0])
            answered.set()

        class Requests(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                for _ in data:
                    task = loop.create_task(handle())
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

        server = await loop.create_server(Requests, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def writer() -> None:
            with socket.create_connection(("127.0.0.1", port)) as requests:
                for i in range(rounds):
                    other.set(KEYS[0], b"%d" % i)
                    fence(other)
                    answered.clear()
                    requests.sendall(b"r")
                    assert answered.wait(5)

        await loop.run_in_executor(None, writer)
        server.close()
        assert client.tracking
        client.close()
        return seen

    assert asyncio.run(run()) == [b"%d" % i for i in range(rounds)]


def test_a_lost_connection_forgets_everything_kept() -> None:
    other = other_client()
    other.set(KEYS[0], b"1")

    async def run() -> None:
        client = PipelinedRedis(TEST_REDIS_URL, 1.0)
        await client.mget(*KEYS, near=True)
        host, port = client._transport.get_extra_info("sockname")[:2]
        other.client_kill(f"{host}:{port}")  # this connection only, as the server sees it
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not client.tracking:
                break
        # Invalidations may have been missed meanwhile: nothing kept is answered.
        assert not client.tracking and client.kept == {}
        assert client.near(KEYS) is None
        other.set(KEYS[0], b"2")
        assert await read(client, KEYS) == [b"2", None]  # reconnects, tracks again
        assert client.tracking
        client.close()

    asyncio.run(run())
