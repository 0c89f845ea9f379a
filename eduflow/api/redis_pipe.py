"""A lean asyncio Redis client for the cache fast path: ``MGET`` only, auto-pipelined.

redis-py's asyncio client spends tens of microseconds of CPU per command (connection
pool, retries, events, timeouts): more than the rest of a cached response. This client
keeps one connection per event loop, writes every command issued during one loop
iteration in a single ``write`` and resolves replies in order as they arrive, so a burst
of concurrent hits costs a few microseconds each. One watchdog timer per connection
enforces the cache timeout: a reply older than it closes the connection and fails every
pending command (the caller then serves from the database). Plain ``redis://`` and
``unix://`` URLs only; anything else (TLS) is left to redis-py by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any


class RedisPipeError(ConnectionError):
    """The connection failed, timed out or Redis answered with an error."""


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

        self.options: dict[str, Any] = parse_url(url)
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._connecting: asyncio.Future[None] | None = None
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._buffer = b""

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
        setup = []
        if opts.get("password"):
            auth = [opts["username"]] if opts.get("username") else []
            setup.append(self._send(_command("AUTH", *auth, opts["password"])))
        if opts.get("db"):
            setup.append(self._send(_command("SELECT", str(opts["db"]))))
        for reply in setup:
            await reply

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
        """Drop the connection (pending commands fail)."""
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------------ commands

    async def mget(self, *keys: str) -> list[bytes | None]:
        """Values of ``keys`` (None for absent ones)."""
        await self._ensure()
        reply = await self._send(_command("MGET", *keys))
        assert isinstance(reply, list)
        return reply

    async def hincrby_many(self, key: str, increments: dict[str, int]) -> None:
        """``HINCRBY key field n`` for each field (pipelined, replies ignored)."""
        await self._ensure()
        replies = [self._send(_command("HINCRBY", key, f, str(n))) for f, n in increments.items()]
        for reply in replies:
            await reply

    def _send(self, data: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((future, time.monotonic()))
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
        while pending:
            try:
                parsed = _parse(buffer, pos)
            except (ValueError, RedisPipeError) as exc:  # garbled stream: start afresh
                self._fail(RedisPipeError(f"bad reply from Redis: {exc}"))
                self.close()
                return
            if parsed is None:
                break
            value, pos = parsed
            future, _ = pending.popleft()
            if not future.done():
                if isinstance(value, RedisPipeError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        self._buffer = buffer[pos:]

    def _fail(self, exc: Exception) -> None:
        pending, self._pending = self._pending, deque()
        for future, _ in pending:
            if not future.done():
                future.set_exception(exc)

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._buffer = b""
        self._fail(RedisPipeError(f"connection to Redis lost: {exc}"))


def _parse(buf: bytes, pos: int) -> tuple[Any, int] | None:
    """One RESP2 reply at ``pos``: (value, next position), or None when incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    pos = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            return None
        return buf[pos : pos + size], pos + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            parsed = _parse(buf, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos
    if kind == b"+":
        return line, pos
    if kind == b":":
        return int(line), pos
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

    async def mget(self, *keys: str) -> list[bytes | None]:
        """Values of ``keys``."""
        return list(await self.client.mget(*keys))

    async def hincrby_many(self, key: str, increments: dict[str, int]) -> None:
        """``HINCRBY`` for each field."""
        pipe = self.client.pipeline(transaction=False)
        for field, n in increments.items():
            pipe.hincrby(key, field, n)
        await pipe.execute()


def connect(url: str, timeout: float) -> PipelinedRedis | RedisPyAdapter:
    """The fast-path client for ``url`` on the running loop (connects lazily)."""
    return PipelinedRedis(url, timeout) if supported(url) else RedisPyAdapter(url, timeout)
