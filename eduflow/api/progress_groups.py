"""Concurrent progress batches recorded together: one transaction for a group of them.

Every client of every learner sends batches, so a busy process has dozens in flight at
once. Recorded one by one, each pays its own lock, read, write and commit round trips,
its statements' fixed cost in SQLAlchemy and psycopg, a thread hand-off and a cache
invalidation. Here the batches that arrive while the process's groups are busy wait in
a queue, and the next free group takes them all (up to ``EDUFLOW_PROGRESS_GROUP_SIZE``,
at most one per enrollment): ``services.progress.record_progress_group`` answers each
exactly as it would alone, with the statements of one batch (figures in
``bench/README.md``). A lone batch on a quiet process starts at once, in a group of one.

A group whose transaction fails as a whole (the database went away, a deadlock with a
writer that locks enrollments in another order) is tried again batch by batch, so each
batch gets the answer it would have got alone.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Sequence

import anyio

from eduflow import deadline
from eduflow.api.threads import writes_limiter
from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.logging import current_request_id
from eduflow.metrics import PROGRESS_GROUP_BATCHES
from eduflow.models.progress import ProgressBatch, ProgressResult
from eduflow.services.permissions import Principal
from eduflow.services.progress import BatchCall, Outcome, record_progress_group
from eduflow.tracing import current_trace_context

# A waiting batch: the call, its request's future and the request's database deadline.
Waiting = tuple[BatchCall, "asyncio.Future[ProgressResult]", float | None]


class ProgressGroups:
    """The groups of one event loop: at most ``groups`` transactions at once (each in a
    thread of its own), each of at most ``size`` batches."""

    def __init__(self, groups: int, size: int) -> None:
        self.groups = groups
        self.size = size
        self.running = 0
        self.queue: deque[Waiting] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(
        self, actor: Principal, enrollment_id: int, batch: ProgressBatch
    ) -> ProgressResult:
        """The batch's result, or the error recording it alone would raise."""
        call = BatchCall(actor, enrollment_id, batch, current_request_id(), current_trace_context())
        future: asyncio.Future[ProgressResult] = asyncio.get_running_loop().create_future()
        self.queue.append((call, future, deadline.current()))
        self._start()
        return await future

    def _start(self) -> None:
        while self.running < self.groups:
            group = take_group(self.queue, self.size)
            if not group:
                return
            self.running += 1
            # A context of its own: the group is no request's (request id, deadline).
            task = asyncio.get_running_loop().create_task(
                self._run(group), context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[Waiting]) -> None:
        outcomes: list[ProgressResult | BaseException]
        try:
            try:
                outcomes = await self._record(group)
            except Exception as exc:
                if len(group) == 1:
                    outcomes = [exc]
                else:  # each batch alone, so that each gets its own answer
                    outcomes = list(
                        await asyncio.gather(
                            *(self._alone(waiting) for waiting in group),
                            return_exceptions=True,
                        )
                    )
            for (_, future, _), outcome in zip(group, outcomes, strict=True):
                if future.done():  # its request went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        finally:
            for _, future, _ in group:
                if not future.done():
                    future.cancel()
            self.running -= 1
            self._start()

    async def _record(self, group: Sequence[Waiting]) -> list[ProgressResult | BaseException]:
        calls = [call for call, _, _ in group]
        # The group's database waits end by its members' first deadline.
        deadlines = [at for _, _, at in group if at is not None]
        at = min(deadlines) if deadlines else None
        # The progress threads bound the retries of a failed group too.
        limiter = writes_limiter("progress", self.groups)
        outcomes = await anyio.to_thread.run_sync(_record_committed, calls, at, limiter=limiter)
        PROGRESS_GROUP_BATCHES.observe(len(calls))
        return outcomes

    async def _alone(self, waiting: Waiting) -> ProgressResult:
        (outcome,) = await self._record([waiting])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def take_group(queue: deque[Waiting], size: int) -> list[Waiting]:
    """The next group: the oldest waiting batches, at most ``size`` and one per enrollment
    (a later batch of an enrollment already in the group waits for the next one, in
    order). Batches whose request went away are dropped."""
    group: list[Waiting] = []
    later: list[Waiting] = []
    taken: set[int] = set()
    while queue and len(group) < size:
        waiting = queue.popleft()
        call, future, _ = waiting
        if future.done():
            continue
        if call.enrollment_id in taken:
            later.append(waiting)
            continue
        taken.add(call.enrollment_id)
        group.append(waiting)
    queue.extendleft(reversed(later))
    return group


def _record_committed(
    calls: Sequence[BatchCall], at: float | None
) -> list[ProgressResult | BaseException]:
    with deadline.until(at), session_scope() as session:
        outcomes: list[Outcome] = record_progress_group(session, calls)
    return list(outcomes)


_groups: dict[object, ProgressGroups] = {}


def progress_groups() -> ProgressGroups:
    """The groups of the running event loop (one loop per server process; tests make new
    ones)."""
    loop = asyncio.get_running_loop()
    groups = _groups.get(loop)
    if groups is None:
        _groups.clear()  # a previous loop's (tests)
        settings = get_settings()
        groups = _groups[loop] = ProgressGroups(
            settings.progress_threads, settings.progress_group_size
        )
    return groups
