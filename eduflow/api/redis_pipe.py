"""A lean asyncio Redis client for the cache fast path: ``MGET`` only, auto-pipelined,
with a near cache kept exact by Redis itself.

redis-py's asyncio client spends tens of microseconds of CPU per command (connection
pool, retries, events, timeouts): more than the rest of a cached response. This client
keeps one connection per event loop, writes every command issued during one loop
iteration in a single ``write`` and resolves replies in order as they arrive, so a burst
of concurrent hits costs a few microseconds each. One watchdog timer per connection
enforces the cache timeout: a reply older than it closes the connection and fails every
pending command (the caller then serves from the database). Plain ``redis://`` and
``unix://`` URLs only; anything else (TLS) is left to redis-py by the caller.

Near cache (server-assisted client-side caching): the connection speaks RESP3 with
``CLIENT TRACKING ON``, so Redis remembers every key this connection read and pushes an
``invalidate`` message on the same connection as soon as any client changes, deletes,
expires or evicts one of them (or flushes the database). Values read with
``mget(..., near=True)`` are kept in this process and :meth:`PipelinedRedis.near` answers
from them without a round trip. Why a kept value is never stale for a request:

- a reply and any later invalidation of its keys travel on this one connection in that
  order, and both are applied as they are parsed: a value is dropped before any later
  reply is seen;
- writers that invalidate (generation bumps, auth state) make one more round trip to
  Redis after the write (``eduflow.cache.stores.fence``): Redis writes pending pushes out
  before it reads the next command, so when the writer goes on, the push is already in
  this process's socket buffer;
- a request that follows that write arrives on a socket the event loop polls together
  with this one, and the loop runs every I/O callback of a poll (the push included)
  before any task the poll started: the request's task finds the value dropped.

Losing the connection drops every kept value (invalidations may have been missed).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

NEAR_KEYS = 100_000  # values kept per process; past that the near cache starts over


class RedisPipeError(ConnectionError):
    """The connection failed, timed out or Redis answered with an error."""


class Push(list[Any]):
    """An out-of-band RESP3 push message (``invalidate`` and friends), not a reply."""


def supported(url: str) -> bool:
    """True for the URL schemes this client speaks (no TLS)."""
    return url.startswith(("redis://", "unix://"))


def _command(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: PipelinedRedis) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(exc)


class PipelinedRedis:
    """One auto-pipelined connection to Redis, bound to the event loop that made it."""

    def __init__(self, url: str, timeout: float) -> None:
        from redis.connection import parse_url

        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._connecting: asyncio.Future[None] | None = None
        # Pending commands: (future, sent at, keys whose values the reply brings for the
        # near cache, or None).
        self._pending: deque[tuple[asyncio.Future[Any], float, tuple[str, ...] | None]] = deque()
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._buffer = b""
        self.tracking = False  # True once Redis tracks the keys read on this connection
        self.kept: dict[str, bytes | None] = {}  # the near cache (exact while tracking)
        # Moves on whenever a kept value is dropped: a decision taken from kept values at
        # one version still holds while the version is the same.
        self.version = 0

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> None:
        opts = self.options
        factory = lambda: _Protocol(self)  # noqa: E731
        try:
            if "path" in opts:
                coro = self.loop.create_unix_connection(factory, opts["path"])
            else:
                coro = self.loop.create_connection(
                    factory, opts.get("host", "localhost"), opts.get("port", 6379)
                )
            transport, _ = await asyncio.wait_for(coro, self.timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisPipeError(f"cannot connect to Redis: {exc}") from exc
        self._transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        self._buffer = b""
        auth: list[str] = []
        if opts.get("password"):
            auth = ["AUTH", opts.get("username") or "default", opts["password"]]
        try:
            await self._send(_command("HELLO", "3", *auth))
            resp3 = True
        except RedisPipeError:  # no RESP3 (Redis < 6): plain round trips, no near cache
            resp3 = False
            if auth:
                await self._send(_command(*auth))
        if opts.get("db"):
            await self._send(_command("SELECT", str(opts["db"])))
        if resp3:
            await self._send(_command("CLIENT", "TRACKING", "ON"))
            self.tracking = True

    async def _ensure(self) -> None:
        if self._transport is not None:
            return
        if self._connecting is None:
            self._connecting = self.loop.create_future()
            try:
                await self._connect()
            except BaseException as exc:
                self._connecting.set_exception(exc)
                self._connecting.exception()  # retrieved: no "never retrieved" warning
                self._connecting = None
                raise
            self._connecting.set_result(None)
            self._connecting = None
            return
        await asyncio.shield(self._connecting)

    def close(self) -> None:
        """Drop the connection (pending commands fail, the near cache starts over)."""
        self._forget()
        if self._transport is not None:
            self._transport.abort()

    def _forget(self) -> None:
        """Stop answering from the near cache: invalidations may be missed from now on."""
        self.tracking = False
        self.kept.clear()
        self.version += 1

    # ------------------------------------------------------------------ commands

    async def mget(self, *keys: str, near: bool = False) -> list[bytes | None]:
        """Values of ``keys`` (None for absent ones); ``near``: keep them in the near
        cache (tracked by Redis from the moment it answers)."""
        await self._ensure()
        reply = await self._send(_command("MGET", *keys), keys if near else None)
        assert isinstance(reply, list)
        return reply

    def drop(self, key: str) -> None:
        """Stop keeping ``key``'s value (the caller keeps a decoded copy of its own)."""
        self.kept.pop(key, None)

    def near(self, keys: tuple[str, ...]) -> list[bytes | None] | None:
        """The kept values of ``keys`` when every one is kept; None otherwise (read them
        with ``mget(..., near=True)``)."""
        if not self.tracking:
            return None
        kept = self.kept
        try:
            return [kept[k] for k in keys]
        except KeyError:
            return None

    async def hincrby_many(self, key: str, increments: dict[str, int]) -> None:
        """``HINCRBY key field n`` for each field (pipelined, replies ignored)."""
        await self._ensure()
        replies = [self._send(_command("HINCRBY", key, f, str(n))) for f, n in increments.items()]
        for reply in replies:
            await reply

    def _send(self, data: bytes, keep: tuple[str, ...] | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((future, time.monotonic(), keep))
        self._outbox.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self.timeout, self._check_timeout)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        data, self._outbox = b"".join(self._outbox), []
        if self._transport is None:
            self._lost(RedisPipeError("not connected"))
        else:
            self._transport.write(data)

    def _check_timeout(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        oldest = self._pending[0][1]
        if time.monotonic() - oldest >= self.timeout:
            self._fail(RedisPipeError(f"Redis did not answer within {self.timeout}s"))
            self.close()
        else:
            self._watchdog = self.loop.call_at(
                self.loop.time() + self.timeout - (time.monotonic() - oldest),
                self._check_timeout,
            )

    # ------------------------------------------------------------------ replies

    def _feed(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        pending = self._pending
        while pos < len(buffer):
            try:
                parsed = _parse(buffer, pos)
                if parsed is not None and type(parsed[0]) is not Push and not pending:
                    raise RedisPipeError("a reply nobody asked for")
            except (ValueError, RedisPipeError) as exc:  # garbled stream: start afresh
                self._fail(RedisPipeError(f"bad reply from Redis: {exc}"))
                self.close()
                return
            if parsed is None:
                break
            value, pos = parsed
            if type(value) is Push:
                self._pushed(value)
                continue
            future, _, keep = pending.popleft()
            if isinstance(value, RedisPipeError):
                if not future.done():
                    future.set_exception(value)
                continue
            if keep is not None and self.tracking:
                # Kept even when nobody waits any more: Redis tracks these keys now.
                if len(self.kept) >= NEAR_KEYS:
                    self.kept.clear()
                    self.version += 1
                self.kept.update(zip(keep, value, strict=True))
            if not future.done():
                future.set_result(value)
        self._buffer = buffer[pos:]

    def _pushed(self, message: Push) -> None:
        """An ``invalidate`` push drops the named keys (all of them on a flush)."""
        if len(message) == 2 and message[0] == b"invalidate":
            self.version += 1
            keys = message[1]
            if keys is None:
                self.kept.clear()
                return
            for name in keys:
                self.kept.pop(name.decode(), None)

    def _fail(self, exc: Exception) -> None:
        pending, self._pending = self._pending, deque()
        for future, _, _ in pending:
            if not future.done():
                future.set_exception(exc)

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._buffer = b""
        self._forget()
        self._fail(RedisPipeError(f"connection to Redis lost: {exc}"))


def _parse(buf: bytes, pos: int) -> tuple[Any, int] | None:
    """One RESP2/RESP3 reply at ``pos``: (value, next position), or None when incomplete.

    Maps come back as flat lists and doubles, booleans and big numbers as Python values;
    a push message as a :class:`Push`.
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    pos = end + 2
    if kind in b"$=!":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            return None
        data = buf[pos : pos + size]
        if kind == b"!":
            return RedisPipeError(data.decode(errors="replace")), pos + size + 2
        return (data[4:] if kind == b"=" else data), pos + size + 2
    if kind in b"*~%>|":
        count = int(line)
        if count < 0:
            return None, pos
        if kind in b"%|":
            count *= 2
        items: list[Any] = Push() if kind == b">" else []
        for _ in range(count):
            parsed = _parse(buf, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        if kind == b"|":  # attributes describe the next reply: skip them
            return _parse(buf, pos)
        return items, pos
    if kind == b"+":
        return line, pos
    if kind in b":(":
        return int(line), pos
    if kind == b"_":
        return None, pos
    if kind == b",":
        return float(line), pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b"-":
        return RedisPipeError(line.decode(errors="replace")), pos
    raise RedisPipeError(f"unexpected reply from Redis: {kind!r}")


class RedisPyAdapter:
    """The same two calls over redis-py's asyncio client (TLS and other URL schemes)."""

    def __init__(self, url: str, timeout: float) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )

    tracking = False  # no near cache over redis-py
    version = 0

    async def mget(self, *keys: str, near: bool = False) -> list[bytes | None]:
        """Values of ``keys``."""
        # decode_responses is off: redis-py's own types cannot tell, the values are bytes.
        return [v.encode() if isinstance(v, str) else v for v in await self.client.mget(*keys)]

    def drop(self, key: str) -> None:
        """Nothing kept."""

    def near(self, keys: tuple[str, ...]) -> list[bytes | None] | None:
        """Always None: every read is a round trip."""
        return None

    async def hincrby_many(self, key: str, increments: dict[str, int]) -> None:
        """``HINCRBY`` for each field."""
        pipe = self.client.pipeline(transaction=False)
        for field, n in increments.items():
            pipe.hincrby(key, field, n)
        await pipe.execute()


def connect(url: str, timeout: float) -> PipelinedRedis | RedisPyAdapter:
    """The fast-path client for ``url`` on the running loop (connects lazily)."""
    return PipelinedRedis(url, timeout) if supported(url) else RedisPyAdapter(url, timeout)
