"""The writes that arrive by the thousand run in a few threads of their own."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio

from eduflow.api.threads import writes_limiter


def test_each_kind_of_write_has_its_own_threads_per_event_loop() -> None:
    async def limiters() -> tuple[anyio.CapacityLimiter, ...]:
        return (
            writes_limiter("progress", 3),
            writes_limiter("progress", 3),
            writes_limiter("seats", 2),
        )

    first = asyncio.run(limiters())
    assert first[0] is first[1] and first[0] is not first[2]
    assert (first[0].total_tokens, first[2].total_tokens) == (3, 2)
    again = asyncio.run(limiters())  # another event loop (a restarted server, a test)
    assert again[0] is not first[0]


def test_no_more_writes_of_a_kind_run_at_once_than_its_threads() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def write() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async def burst() -> None:
        limiter = writes_limiter("progress", 2)
        async with anyio.create_task_group() as tasks:
            for _ in range(10):
                tasks.start_soon(lambda: anyio.to_thread.run_sync(write, limiter=limiter))

    asyncio.run(burst())
    assert most == 2
