"""One Redis outage state per process: a frozen Redis costs its timeout once, not per call.

A Redis whose port is closed fails every call at once; one that stops answering (stopped
process, partition) makes every call wait for its socket timeout, and redis-py's default
retries wait several times. EduFlow's request-path clients (``get_redis()``, the cache
store) therefore share this breaker, installed in their connection class:

- a call that times out, or a connection that cannot be opened, marks Redis down;
- while it is down, every call of those clients fails at once (``ConnectionError``, which
  each caller already handles as an outage: database reads, outbox sweep, ...);
- a background thread pings Redis on a fresh connection every ``PROBE_EVERY`` seconds and
  marks it up again as soon as it answers. No request ever waits for a probe.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar, cast

RedisT = TypeVar("RedisT")

PROBE_EVERY = 0.25  # seconds between background pings while Redis is down
PROBE_TIMEOUT = 0.5  # seconds one ping may take


class RedisOutage:
    """Whether this process currently considers Redis down, and the probe that ends it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self._probing = False
        self._generation = 0  # a probe of an earlier generation (before reset) stops

    @property
    def down(self) -> bool:
        """True while an outage is known (hot path: one attribute read)."""
        return self.down_since is not None

    def check(self) -> None:
        """Fail at once while Redis is known down."""
        if self.down_since is not None:
            import redis

            raise redis.ConnectionError("Redis is unavailable (outage in progress)")

    def trip(self, connection_class: type[Any], kwargs: dict[str, Any], exc: BaseException) -> None:
        """Mark Redis down (first failure of an outage: log it) and start the probe."""
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
            start_probe = not self._probing
            self._probing = True
            generation = self._generation
        if first:
            from eduflow.logging import get_logger

            get_logger("eduflow.redis").warning(
                "redis_unavailable", error=f"{type(exc).__name__}: {exc}"[:200]
            )
        if start_probe:
            threading.Thread(
                target=self._probe,
                args=(connection_class, kwargs, generation),
                name="eduflow-redis-probe",
                daemon=True,
            ).start()

    def _probe(self, connection_class: type[Any], kwargs: dict[str, Any], generation: int) -> None:
        probe_kwargs = dict(kwargs, socket_timeout=PROBE_TIMEOUT,
                            socket_connect_timeout=PROBE_TIMEOUT)  # fmt: skip
        while True:
            time.sleep(PROBE_EVERY)
            if generation != self._generation:
                return  # reset meanwhile (tests): a later trip starts its own probe
            connection = connection_class(**probe_kwargs)
            try:
                connection.connect()
                connection.send_command("PING")
                connection.read_response()
            except Exception:
                continue
            finally:
                connection.disconnect()
            with self._lock:
                if generation != self._generation:
                    return
                was_down, self.down_since = self.down_since, None
                self._probing = False
            if was_down is not None:
                from eduflow.logging import get_logger

                get_logger("eduflow.redis").warning(
                    "redis_recovered", down_seconds=round(time.monotonic() - was_down, 2)
                )
            return

    def reset(self) -> None:
        """Forget any outage (tests)."""
        with self._lock:
            self.down_since = None
            self._probing = False
            self._generation += 1


outage = RedisOutage()


def guarded(connection_class: type[Any], kwargs: dict[str, Any]) -> type[Any]:
    """``connection_class`` (redis-py) whose calls share the process's outage state
    (``kwargs``: how its pool connects, for the probe)."""
    import redis

    class Guarded(connection_class):  # type: ignore[misc,valid-type]
        def connect(self, *args: Any, **kwargs: Any) -> Any:
            outage.check()
            try:
                return super().connect(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                outage.trip(connection_class, self._probe_kwargs(), exc)
                raise

        def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
            outage.check()
            try:
                return super().send_packed_command(*args, **kwargs)
            except redis.TimeoutError as exc:
                outage.trip(connection_class, self._probe_kwargs(), exc)
                raise

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().read_response(*args, **kwargs)
            except redis.TimeoutError as exc:
                outage.trip(connection_class, self._probe_kwargs(), exc)
                raise

        def _probe_kwargs(self) -> dict[str, Any]:
            return kwargs

    return Guarded


def guard(client: RedisT) -> RedisT:
    """Make ``client`` (a redis-py ``Redis``) share the outage state; no retry on timeouts
    (one lost connection is retried once; a timeout is an outage, not a blip)."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    pool: Any = cast(Any, client).connection_pool
    once = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    pool.connection_kwargs["retry"] = once
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "retry"}
    pool.connection_class = guarded(pool.connection_class, kwargs)
    return client
