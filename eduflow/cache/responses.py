"""The catalogue's response cache policy: encoded JSON bytes plus their ETag, per audience.

A hit does no database work, no model validation and no JSON encoding: the stored bytes
are sent as they are. Entries are valid only while the generation tokens they were built
under are current (``eduflow.cache.generations`` documents the key scheme), so a committed
write makes them unreachable at once. A miss is rebuilt by one request at a time per key
(``SET NX`` lock); concurrent requests for the same key wait briefly for it instead of all
querying the database. When the cache backend fails, requests are served from the database.

Audiences (who may share one cached representation):

- course lists: anonymous callers and students share ``public`` (they see the same
  published courses); admins share ``admin``; each instructor has their own (drafts).
- course detail: one entry per course for everybody; a draft's entry names its owner's
  id and is served only to whom the permission rule admits (anyone else goes to the
  service, which answers 404).
- lesson lists: anonymous callers share ``public`` (outlines, ``content: null``); admins
  share ``admin``; every other signed-in user has their own entry, because ``content``
  depends on their enrollment, and enrollment writes replace the course's generation.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eduflow.cache.generations import (
    GEN_CATALOG,
    GEN_EPOCH,
    course_gen_key,
    new_generation,
    position_of,
)
from eduflow.cache.health import get_cache_store, health, stats
from eduflow.cache.stores import StoreUnavailable, key
from eduflow.models.users import Role

Scope = Mapping[str, Any]  # an ASGI scope: what a request's cache key is made of


class Caller(Protocol):
    """Who asks, as far as the cache's audiences need to know (``Principal`` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> Role: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def is_instructor(self) -> bool: ...


NAMESPACES = ("courses", "course", "lessons")
PUBLIC = "public"
# Longer URLs are served uncached: they are rare and would only bloat the key space.
MAX_VARIANT_CHARS = 1024
LOCK_TTL = 5.0  # a crashed rebuilder holds its lock this long at most
WAIT_FOR_REBUILD = 1.0  # then the waiter reads the database itself
POLL_EVERY = 0.005
GEN_TTL = 7 * 24 * 3600.0  # generation tokens of deleted courses fade away

_SEP = b"\x1f"
_DRAFT = b"d:"
PUBLISHED = b"p"


@dataclass(frozen=True, slots=True)
class Plan:
    """Where one response lives in the cache and which generations it depends on."""

    namespace: str
    key: str
    deps: tuple[str, ...]

    @property
    def lock_key(self) -> str:
        """The rebuild lock of this entry."""
        return "eduflow:lock:" + self.key.removeprefix("eduflow:resp:")


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached response: its body, ETag and the generation tag it was built under."""

    deps: tuple[str, ...]
    tag: bytes
    etag: bytes
    meta: bytes
    body: bytes

    def encode(self) -> bytes:
        """The stored form: one header line, then the body bytes."""
        header = _SEP.join([",".join(self.deps).encode(), self.tag, self.etag, self.meta])
        return header + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        """The entry, or None for anything unreadable (treated as a miss)."""
        header, newline, body = raw.partition(b"\n")
        parts = header.split(_SEP)
        if not newline or len(parts) != 4:
            return None
        deps, tag, etag, meta = parts
        return cls(tuple(deps.decode().split(",")), tag, etag, meta, body)

    @property
    def draft_owner(self) -> int | None:
        """The owner's id of a draft course's entry; None for anything published (or not
        a course). Who may see a draft is the permission rule's call
        (``services.permissions.may_see_course``), not the cache's."""
        if not self.meta.startswith(_DRAFT):
            return None
        owner = self.meta[len(_DRAFT) :]
        return int(owner) if owner.isdigit() else 0


def tag_of(gens: Sequence[bytes | None]) -> bytes:
    """The tag of an entry built while ``gens`` are current."""
    return b",".join(g or b"" for g in gens)


def course_meta(is_published: bool, owner_id: int) -> bytes:
    """The visibility note of a course entry: published, or a draft and its owner's id."""
    return PUBLISHED if is_published else b"%b%d" % (_DRAFT, owner_id)


# --------------------------------------------------------------------------- keys


def request_variant(scope: Scope) -> str | None:
    """Path and raw query of a request. Not the Host header nor the scheme: the links of a
    list page come from EDUFLOW_PUBLIC_BASE_URL, so every client shares one entry."""
    variant = f"{scope['path']}?{scope.get('query_string', b'').decode('latin-1')}"
    return variant if len(variant) <= MAX_VARIANT_CHARS else None


def course_list_audience(actor: Caller | None) -> str:
    """Who shares a cached course list with ``actor``."""
    if actor is None or not (actor.is_admin or actor.is_instructor):
        return PUBLIC
    return "admin" if actor.is_admin else f"instructor.{actor.id}"


def lesson_list_audience(actor: Caller | None) -> str:
    """Who shares a cached lesson list with ``actor``."""
    if actor is None:
        return PUBLIC
    return "admin" if actor.is_admin else f"user.{actor.id}.{actor.role.value}"


def course_list_plan(scope: Scope, audience: str) -> Plan | None:
    """The entry of a course list page (None: not cacheable)."""
    variant = request_variant(scope)
    if variant is None:
        return None
    return Plan("courses", key("resp", "courses", audience, variant), (GEN_EPOCH, GEN_CATALOG))


def course_detail_plan(course_id: int) -> Plan:
    """The entry of one course."""
    return Plan("course", key("resp", "course", course_id), (GEN_EPOCH, course_gen_key(course_id)))


def lesson_list_plan(scope: Scope, audience: str, course_id: int | None) -> Plan | None:
    """The entry of a lesson list page (of one course, or of every visible course)."""
    variant = request_variant(scope)
    if variant is None:
        return None
    gen = course_gen_key(course_id) if course_id is not None else GEN_CATALOG
    return Plan("lessons", key("resp", "lessons", audience, variant), (GEN_EPOCH, gen))


# --------------------------------------------------------------------------- lookups


def current_entry(plan: Plan, gens: Sequence[bytes | None], raw: bytes | None) -> Entry | None:
    """The one cache lookup: the entry stored for ``plan`` when it was built under the
    generations current now (``gens``, read with it), else None. The routes and the fast
    path read the values their own way (store, near cache) and decide here."""
    if raw is None or None in gens:
        return None
    entry = Entry.decode(raw)
    if entry is None or entry.deps != plan.deps or entry.tag != tag_of(gens):
        return None
    return entry


def _lookup(plan: Plan) -> tuple[Entry | None, bytes]:
    """The valid entry (or None) and the current tag, creating missing generations."""
    store = get_cache_store()
    values = store.mget(*plan.deps, plan.key)
    gens = values[:-1]
    if any(g is None for g in gens):
        from eduflow.db_routing import current_position

        # A lost token may have named a write a replica has not replayed: the new one
        # names the primary's position now (None without a replica).
        position = current_position()
        for dep, gen in zip(plan.deps, gens, strict=True):
            if gen is None:
                store.set_nx(dep, new_generation(position), GEN_TTL)
        return None, tag_of(store.mget(*plan.deps))
    return current_entry(plan, gens, values[-1]), tag_of(gens)


# Builds ``(body, meta)`` from the database, given the WAL position the data must include
# (named by the entry's generation tokens; None when unknown): a read replica may serve it
# only once it has replayed that far (``eduflow.db_routing``).
Builder = Callable[[int | None], tuple[bytes, bytes]]


def etag_of(body: bytes) -> str:
    """A strong ETag: the representation's bytes decide it, so any visible change changes it."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _build(plan: Plan, tag: bytes, build: Builder, since: bytes | None = None) -> Entry:
    body, meta = build(position_of(tag if since is None else since))
    return Entry(plan.deps, tag, etag_of(body).encode(), meta, body)


def uncached(plan: Plan | None, build: Builder, since: bytes = b"") -> Entry:
    """An entry built now and not stored (uncacheable request, or not to be shared); the
    data must include the writes the generation tag ``since`` names."""
    return _build(entry_plan(plan), b"", build, since)


def _store_entry(plan: Plan, entry: Entry) -> None:
    from eduflow.config import get_settings

    get_cache_store().set(plan.key, entry.encode(), get_settings().cache_ttl)


def _release(plan: Plan, token: bytes) -> None:
    store = get_cache_store()
    if store.get(plan.lock_key) == token:
        store.delete(plan.lock_key)


def get_or_build(plan: Plan | None, build: Builder) -> tuple[Entry, bool]:
    """The cached entry of ``plan`` (``True``), or one built by ``build`` from the database.

    ``build`` returns ``(body, meta)`` and runs in the caller's transaction; it may raise
    (404, 422), and then nothing is cached. Only one caller per key rebuilds at a time.
    """
    if plan is None:
        return uncached(plan, build), False
    ns = plan.namespace
    if not health.usable(ns):
        return uncached(plan, build), False
    try:
        entry, tag = _lookup(plan)
    except StoreUnavailable as exc:
        health.failed(ns, exc)
        return uncached(plan, build), False
    if entry is not None:
        stats.record(ns, "hits")
        stats.flush()
        return entry, True
    stats.record(ns, "misses")
    deadline = time.monotonic() + WAIT_FOR_REBUILD
    token = new_generation()
    try:
        while True:
            if get_cache_store().set_nx(plan.lock_key, token, LOCK_TTL):
                try:
                    # Checked again under the lock: a rebuilder that finished between our
                    # lookup and our lock has already stored the entry.
                    entry, tag = _lookup(plan)
                    if entry is not None:
                        return entry, True
                    stats.record(ns, "rebuilds")
                    entry = _build(plan, tag, build)
                    _store_entry(plan, entry)
                finally:
                    _release(plan, token)
                stats.flush()
                return entry, False
            if time.monotonic() >= deadline:
                return uncached(plan, build, tag), False
            time.sleep(POLL_EVERY)
            entry, tag = _lookup(plan)
            if entry is not None:
                return entry, True
    except StoreUnavailable as exc:
        health.failed(ns, exc)
        return uncached(plan, build), False


def response_headers(entry: Entry, hit: bool, with_body: bool) -> list[tuple[bytes, bytes]]:
    """The raw headers of a cached response (shared by the route and the fast path)."""
    headers = [
        (b"etag", entry.etag),
        (b"vary", b"Authorization"),
        (b"x-cache", b"hit" if hit else b"miss"),
    ]
    if with_body:
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(entry.body)).encode()))
    return headers


def entry_plan(plan: Plan | None) -> Plan:
    """``plan``, or the placeholder of an uncacheable request."""
    return plan if plan is not None else Plan("uncached", "", ())
