"""Threads of their own for the writes that arrive by the thousand.

Routes run blocking work in the shared pool (40 threads). Enrollments and progress
batches (a group of them per transaction, ``eduflow.api.progress_groups``) run in a few
threads each instead: a thread beyond the database connections a
process has only waits for one, and every runnable thread competes for the interpreter
lock, which stretches the time each write holds its row lock and its connection (figures
in ``bench/README.md``). One limiter per kind of write and per event loop (one loop per
server process; tests make new ones).
"""

from __future__ import annotations

import asyncio

import anyio

_limiters: dict[tuple[object, str], anyio.CapacityLimiter] = {}


def writes_limiter(kind: str, threads: int) -> anyio.CapacityLimiter:
    """The limiter of ``kind`` writes in this event loop (``threads`` at most at once)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get((loop, kind))
    if limiter is None:
        for key in [k for k in _limiters if k[0] is not loop]:
            del _limiters[key]  # a previous loop's (tests)
        limiter = _limiters[(loop, kind)] = anyio.CapacityLimiter(threads)
    return limiter
