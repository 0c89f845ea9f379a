"""Refresh-ahead: each server process rebuilds the retired catalogue entries its readers
asked for, once the writes that retired them have gone quiet.

A write retires every cached entry that shows what it changed (an enrollment: its
course's detail and the course lists). Left alone, the next reader of each entry rebuilds
it through the route; after a burst of writes over many courses that is many rebuilds at
once, in front of readers waiting for them (``bench/README.md``, "Reps, and reads right
after writes"). So each process keeps the public entries it answered lately
(``HOT_ENTRIES``, seen within ``HOT_FOR`` seconds) and, every ``TICK`` while any of its
kept values has changed, reads their generation tokens in one read. An entry that is
retired and whose tokens have not moved for ``QUIET`` seconds is rebuilt by a request to
the application itself -- the same route, rules and rebuild lock as a reader's miss,
anonymous, with ``User-Agent: eduflow-refresh-ahead`` in its access line -- at most
``PER_TICK`` per tick, one at a time. An entry whose course keeps being written is left
to its readers, as before. While the process itself is busy writing (more than
``BUSY_WRITES`` writes answered since the last tick: a burst of enrollments) it stands
aside altogether: rebuilding then takes CPU from the writes, and the entries wait for
the burst's end, or for a reader, exactly as without refresh-ahead. Only with the near
cache (Redis): it is what tells a process that something changed.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Scope

from eduflow.cache.responses import Plan, current_entry, tag_of
from eduflow.logging import get_logger


class Reads(Protocol):
    """What refreshing needs of the fast path's reads (``api.cached.CachedReads``)."""

    def near_client(self) -> Any: ...

    async def read(
        self, keys: tuple[str, ...], namespace: str, near: bool = True
    ) -> list[bytes | None] | None: ...


TICK = 0.5  # seconds between looks at the hot entries' tokens
QUIET = 2.0  # an entry's tokens unchanged this long: its writes are over for now
PER_TICK = 4  # rebuilds per tick at most
BUSY_WRITES = 8  # writes answered in one tick beyond which the process is busy writing
HOT_ENTRIES = 256  # public entries kept per process (the most recently answered)
HOT_FOR = 600.0  # seconds after its last answer an entry stops being refreshed
USER_AGENT = b"eduflow-refresh-ahead"


@dataclass(slots=True)
class Hot:
    """A public entry this process answered: the request that rebuilds it, the tag it
    was last seen current at, and since when its tokens have held their present tag."""

    plan: Plan
    path: str
    query: bytes
    seen: float
    current: bytes
    moved_to: bytes = b""
    moved_at: float = 0.0


class RefreshAhead:
    """The hot public entries of one process, and the task that rebuilds them."""

    def __init__(self, reads: Reads, app: ASGIApp) -> None:
        self._reads = reads
        self._app = app
        self._hot: OrderedDict[str, Hot] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._seen_version: int | None = None
        self._waiting = False  # some entry is retired and not yet rebuilt
        self._writes = 0  # writes answered since the last tick
        self.rebuilds = 0

    def note(self, plan: Plan, scope: Scope, tag: bytes) -> None:
        """``scope``'s request, answered from ``plan``'s entry (current at ``tag``), would
        be answered alike to an anonymous caller: keep it hot."""
        hot = self._hot.get(plan.key)
        now = time.monotonic()
        if hot is None:
            if len(self._hot) >= HOT_ENTRIES:
                self._hot.popitem(last=False)
            hot = self._hot[plan.key] = Hot(plan, scope["path"], scope["query_string"], now, tag)
        else:
            hot.seen, hot.current = now, tag
            self._hot.move_to_end(plan.key)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def note_write(self) -> None:
        """This process is answering a write (any method but GET)."""
        self._writes += 1

    def stop(self) -> None:
        """End the task (the server is shutting down)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick()
            except Exception as exc:  # never the end of refreshing: readers rebuild anyway
                get_logger("eduflow.error").error("refresh_ahead_failed", exc_info=exc)

    async def tick(self) -> None:
        """Look at the hot entries once; rebuild those retired and quiet, unless the process
        is busy writing."""
        busy, self._writes = self._writes > BUSY_WRITES, 0
        client = self._reads.near_client()
        if client is None or not client.tracking:
            return
        if client.version == self._seen_version and not self._waiting:
            return
        self._seen_version = client.version
        now = time.monotonic()
        hot = [h for h in self._hot.values() if now - h.seen < HOT_FOR]
        deps = tuple(dict.fromkeys(d for h in hot for d in h.plan.deps))
        values = await self._reads.read(deps, "course") if deps else None
        if values is None:
            self._waiting = False
            return
        gens = dict(zip(deps, values, strict=True))
        due: list[tuple[Hot, list[bytes | None]]] = []
        self._waiting = False
        for h in hot:
            plan_gens = [gens[d] for d in h.plan.deps]
            tag = tag_of(plan_gens)
            if None in plan_gens or tag == h.current:
                continue
            if tag != h.moved_to:
                h.moved_to, h.moved_at = tag, now
            if busy or now - h.moved_at < QUIET:
                self._waiting = True
            elif len(due) < PER_TICK:
                due.append((h, plan_gens))
            else:
                self._waiting = True
        if due:
            await self._refresh(due)

    async def _refresh(self, due: list[tuple[Hot, list[bytes | None]]]) -> None:
        """Rebuild what another process has not rebuilt already."""
        stored = await self._reads.read(tuple(h.plan.key for h, _ in due), "course", near=False)
        for (h, gens), raw in zip(due, stored or [None] * len(due), strict=True):
            if current_entry(h.plan, gens, raw) is None:
                await self._request(h.path, h.query)
                self.rebuilds += 1
            h.current = tag_of(gens)

    async def _request(self, path: str, query: bytes) -> None:
        """An anonymous GET of ``path`` to the application, its answer dropped."""
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"localhost"), (b"user-agent", USER_AGENT)],
            "client": None,
            "server": None,
            "state": {},
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            return None

        await self._app(scope, receive, send)
