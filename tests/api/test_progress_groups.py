"""The grouping of concurrent progress batches (``eduflow.api.progress_groups``), in one
process against PostgreSQL: batches that wait share a transaction, one enrollment never
twice in a group, a failed group is retried batch by batch, and a group runs under its
members' deadline, never under an earlier request's."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import Any

import pytest

from eduflow import deadline
from eduflow.api import progress_groups as groups_module
from eduflow.api.progress_groups import ProgressGroups, take_group
from eduflow.db import session_scope
from eduflow.errors import Unavailable
from eduflow.models.progress import ProgressBatch, ProgressResult
from eduflow.models.users import Role
from eduflow.services.permissions import Principal
from eduflow.services.progress import BatchCall
from tests.factories import make_course, make_enrollment, make_lesson, make_user


def _batch(lesson: int) -> ProgressBatch:
    return ProgressBatch.model_validate(
        {"events": [{"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": "completed"}]}
    )


def _students(n: int) -> tuple[list[tuple[Principal, int]], int]:
    """``n`` actively enrolled students of one course of two lessons, and a lesson."""
    with session_scope() as s:
        course = make_course(s)
        lesson = make_lesson(s, course).id
        make_lesson(s, course)
        out = []
        for _ in range(n):
            student = make_user(s)
            enrollment = make_enrollment(s, student, course)
            out.append(
                (
                    Principal(id=student.id, username=student.username, role=Role.student),
                    enrollment.id,
                )
            )
    return out, lesson


class _Spy:
    """The real ``record_progress_group``, with the size of each group it was given."""

    def __init__(self, fail_groups: bool = False) -> None:
        self.sizes: list[int] = []
        self.fail_groups = fail_groups
        self.real = groups_module.record_progress_group

    def __call__(self, session: Any, calls: Any) -> Any:
        self.sizes.append(len(calls))
        if self.fail_groups and len(calls) > 1:
            raise RuntimeError("a group-wide failure")
        return self.real(session, calls)


def _waiting(enrollment_id: int, loop: asyncio.AbstractEventLoop) -> Any:
    call = BatchCall(None, enrollment_id, {"events": []})
    return call, loop.create_future(), None


def test_take_group_keeps_order_one_batch_per_enrollment_and_drops_the_gone() -> None:
    loop = asyncio.new_event_loop()
    try:
        queue = deque(_waiting(e, loop) for e in (1, 2, 1, 3, 4, 2, 5))
        queue[4][1].cancel()  # enrollment 4's request went away
        group = take_group(queue, size=3)
        assert [w[0].enrollment_id for w in group] == [1, 2, 3]
        # The second batch of 1 waits at the head; the full group left the rest in order.
        assert [w[0].enrollment_id for w in queue] == [1, 4, 2, 5]
        # The next group: the one whose request went away is dropped.
        assert [w[0].enrollment_id for w in take_group(queue, size=10)] == [1, 2, 5]
        assert not queue
    finally:
        loop.close()


def test_batches_that_wait_share_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    students, lesson = _students(12)
    spy = _Spy()
    monkeypatch.setattr(groups_module, "record_progress_group", spy)

    async def run() -> list[ProgressResult]:
        groups = ProgressGroups(groups=1, size=32)
        return await asyncio.gather(
            *(groups.record(actor, enrollment, _batch(lesson)) for actor, enrollment in students)
        )

    before = _group_figures()
    results = asyncio.run(run())
    assert [r.enrollment for r in results] == [e for _, e in students]
    assert all(r.accepted == 1 and r.progress.completed_lessons == 1 for r in results)
    # The first starts alone at once; the eleven that arrived meanwhile go together.
    assert spy.sizes == [1, 11]
    after = _group_figures()  # /metrics: two transactions, twelve batches
    assert (after[0] - before[0], after[1] - before[1]) == (2, 12)


def _group_figures() -> tuple[float, float]:
    """``eduflow_progress_group_batches``: its count and sum in this process."""
    from eduflow.metrics import PROGRESS_GROUP_BATCHES

    samples = {s.name: s.value for s in PROGRESS_GROUP_BATCHES.collect()[0].samples}
    return samples["eduflow_progress_group_batches_count"], samples[
        "eduflow_progress_group_batches_sum"
    ]


def test_a_group_that_fails_is_recorded_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    students, lesson = _students(6)
    spy = _Spy(fail_groups=True)
    monkeypatch.setattr(groups_module, "record_progress_group", spy)

    async def run() -> list[Any]:
        groups = ProgressGroups(groups=1, size=32)
        return await asyncio.gather(
            *(groups.record(actor, enrollment, _batch(lesson)) for actor, enrollment in students),
            groups.record(students[0][0], 2**31 - 1, _batch(lesson)),  # not found, alone too
            return_exceptions=True,
        )

    *results, missing = asyncio.run(run())
    assert all(isinstance(r, ProgressResult) and r.accepted == 1 for r in results)
    assert type(missing).__name__ == "NotFound"
    assert spy.sizes == [1, 6, 1, 1, 1, 1, 1, 1]


def test_a_group_runs_under_its_own_members_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose request's deadline has passed gets its 503; the batch queued behind
    it, started when that group ends, is not bound by that deadline."""
    students, lesson = _students(2)
    seen: list[float | None] = []
    real = groups_module.record_progress_group

    def spy(session: Any, calls: Any) -> Any:
        seen.append(deadline.current())
        return real(session, calls)

    monkeypatch.setattr(groups_module, "record_progress_group", spy)

    async def expired(groups: ProgressGroups) -> Any:
        with deadline.until(time.monotonic() - 1):  # this task's context only
            return await groups.record(students[0][0], students[0][1], _batch(lesson))

    async def run() -> list[Any]:
        groups = ProgressGroups(groups=1, size=32)
        first = asyncio.ensure_future(expired(groups))
        await asyncio.sleep(0)  # the expired one starts its group first
        second = groups.record(students[1][0], students[1][1], _batch(lesson))
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(run())
    assert isinstance(first, Unavailable)
    assert isinstance(second, ProgressResult) and second.accepted == 1
    # The first group ran under its expired deadline, the second under none inherited.
    assert len(seen) == 2 and seen[0] is not None and seen[0] < time.monotonic()
    assert seen[1] is None
