"""Generation tokens: how a committed write makes cached responses unreachable at once.

Key scheme of the response cache (see ``eduflow/cache/responses.py``):

- ``eduflow:gen:epoch``, ``eduflow:gen:catalog``, ``eduflow:gen:course:{id}`` -- generation
  tokens. A catalogue write replaces the catalog token and the course's token after its
  commit; every cached entry records the tokens it was built under and is only served
  while they are current, so a write makes every affected entry unreachable at once,
  list pages included, without a key scan. Tokens are random (never counters), so a lost
  generation key can never bring an old entry back to life. With a read replica, a token
  also names the primary's WAL position after the write that replaced it (``{random}@{hex
  position}``): an entry built under it must be read from data at least that new
  (``position_of``, ``eduflow.db_routing``).
- ``eduflow:resp:{namespace}:{variant}`` -- encoded response bytes with their ETag.
- ``eduflow:lock:{namespace}:{variant}`` -- the rebuild lock (``SET NX``, short TTL).
- ``eduflow:cache:stats`` -- hash of hits/misses/rebuilds/errors per namespace, summed over
  every server process (``eduflow cache stats``, ``eduflow.cache.health.STATS_KEY``).
"""

from __future__ import annotations

import secrets

from eduflow.cache.stores import RedisStore, Store, StoreUnavailable, fence, key

GEN_EPOCH = key("gen", "epoch")
GEN_CATALOG = key("gen", "catalog")


def course_gen_key(course_id: int) -> str:
    """The generation key of one course (detail and its lesson lists)."""
    return key("gen", "course", course_id)


def new_generation(position: int | None = None) -> bytes:
    """A fresh, never-reused generation token (naming a WAL ``position`` when given)."""
    token = secrets.token_hex(8)
    return (token if position is None else f"{token}@{position:x}").encode()


def position_of(tag: bytes) -> int | None:
    """The newest WAL position the tokens of ``tag`` (comma-separated) name, else None."""
    found = [int(pos, 16) for gen in tag.split(b",") if (pos := gen.partition(b"@")[2])]
    return max(found) if found else None


def replace_generations(store: Store, *gen_keys: str, position: int | None = None) -> None:
    """Give each of ``gen_keys`` a fresh token (naming ``position``) in one round trip, then
    wait for the invalidations it causes (``fence``), so entries built under the old ones
    are unreachable."""
    if isinstance(store, RedisStore):
        import redis as redis_lib

        try:
            store.client.mset({gen_key: new_generation(position) for gen_key in gen_keys})
            fence(store.client)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
    else:
        for gen_key in gen_keys:
            store.set(gen_key, new_generation(position))
