"""Catalogue invalidation: every service write to courses, lessons or seats retires the
cached responses it affects, after its commit."""

from __future__ import annotations

from eduflow.cache.generations import GEN_CATALOG, GEN_EPOCH, course_gen_key, replace_generations
from eduflow.cache.health import get_cache_store, health
from eduflow.cache.stores import StoreUnavailable


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
    from eduflow.db_routing import write_position

    position = write_position()  # with a read replica: what fills must have replayed
    if not health.usable("catalog"):
        health.pending_bump = True
        return
    try:
        replace_generations(get_cache_store(), *keys_to_bump, position=position)
    except StoreUnavailable as exc:
        health.failed("catalog", exc)
