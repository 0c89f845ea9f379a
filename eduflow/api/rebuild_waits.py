"""Waiting for a rebuild: on a miss of a cache entry the first request of this process
goes on to the route, which rebuilds the entry; the others wait for that request to end
and then read the cache again -- one thread per missing entry instead of one per
request, and no thread held while waiting (they wait on the event loop)."""

from __future__ import annotations

import asyncio

from starlette.types import Scope

from eduflow.cache.responses import WAIT_FOR_REBUILD

_REBUILDS = "rebuilds_entry"  # scope state: the entry this request's route rebuilds


class RebuildWaits:
    """The entries of this process being rebuilt, each with the requests waiting on it."""

    def __init__(self) -> None:
        self._rebuilding: dict[str, asyncio.Future[None]] = {}  # entry key -> its rebuild

    async def wait(self, key: str, scope: Scope) -> bool:
        """True once another request's rebuild of ``key`` has ended (read the cache
        again); False when this request is to rebuild it, or waited ``WAIT_FOR_REBUILD``
        in vain (both go on to the route)."""
        waiting = self._rebuilding.get(key)
        if waiting is None:
            self._rebuilding[key] = asyncio.get_running_loop().create_future()
            scope["state"][_REBUILDS] = key
            return False
        try:
            await asyncio.wait_for(asyncio.shield(waiting), WAIT_FOR_REBUILD)
        except TimeoutError:
            return False
        return True

    def done(self, scope: Scope) -> None:
        """The application has answered ``scope``: if it went on to rebuild an entry, the
        requests waiting for that entry read the cache again."""
        state = scope.get("state")
        key = state.pop(_REBUILDS, None) if state else None
        if key is not None:
            waiting = self._rebuilding.pop(key, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
