"""Cached course progress (``GET /courses/{id}/progress/``): its entry and its generation.

The entry depends on the epoch, the course's generation (lesson, enrollment and course
writes replace it) and the course's progress generation, which every progress write
replaces after its commit: the figures are never stale, and progress writes leave the
catalogue's entries alone.
"""

from __future__ import annotations

from eduflow.cache.generations import GEN_EPOCH, course_gen_key, replace_generations
from eduflow.cache.health import get_cache_store, health
from eduflow.cache.stores import StoreUnavailable, key

NAMESPACE = "progress"


def progress_gen_key(course_id: int) -> str:
    """The generation key of a course's progress figures."""
    return key("gen", "progress", course_id)


def course_progress_deps(course_id: int) -> tuple[str, ...]:
    """The generations the cached figures of ``course_id`` are built under."""
    return (GEN_EPOCH, course_gen_key(course_id), progress_gen_key(course_id))


def course_progress_key(course_id: int) -> str:
    """Where the cached figures of ``course_id`` live."""
    return key("resp", NAMESPACE, course_id)


def invalidate_course_progress(session: object, course_id: int) -> None:
    """After the commit, make the cached figures of ``course_id`` unreachable (one Redis
    round trip per transaction, whatever the number of calls; none on rollback)."""
    from sqlmodel import Session

    from eduflow.db import on_commit

    assert isinstance(session, Session)
    pending: set[int] | None = session.info.get("progress_invalidations")
    if pending is None:
        pending = session.info["progress_invalidations"] = set()

        def _bump() -> None:
            bump_progress_generations(*sorted(session.info.pop("progress_invalidations", ())))

        on_commit(session, _bump)
    pending.add(course_id)


def bump_progress_generations(*course_ids: int) -> None:
    """Replace the progress generations of ``course_ids``; when Redis cannot be reached the
    bump is remembered (the next successful cache call replaces the epoch)."""
    if not course_ids:
        return
    if not health.usable(NAMESPACE):
        health.pending_bump = True
        return
    try:
        replace_generations(get_cache_store(), *(progress_gen_key(c) for c in course_ids))
    except StoreUnavailable as exc:
        health.failed(NAMESPACE, exc)
