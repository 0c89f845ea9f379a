"""Throttles: fixed-window counters per account, per email and per client address.

Counters live in the Store (Redis, or in-process on the embedded default) so every API
process shares them. When Redis does not answer, the counters move to a limiter inside
this process instead of switching off: an attacker then gets at most the limit per
process and window (``N`` processes: ``N`` times the limit), never an unlimited run.
The local counters live in the process's in-process store, apart from the shared ones;
when Redis answers again the shared counts resume where they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eduflow.cache.stores import Store, StoreUnavailable, get_store, key, memory_store
from eduflow.config import get_settings
from eduflow.errors import Throttled
from eduflow.logging import get_logger

T = TypeVar("T")


def _subject_key(kind: str, subject: str) -> str:
    # Hashed: usernames, emails and addresses of any shape make short, safe keys that
    # never show personal data in `cache keys` output.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return key("throttle", kind, digest)


def _on_store(op: Callable[[Store], T]) -> T:
    """Run ``op`` on the shared store, or on this process's limiter when it is down."""
    try:
        return op(get_store())
    except StoreUnavailable:
        get_logger("eduflow.auth").warning("throttle_store_unavailable", fallback="process")
        return op(memory_store)  # this process's own store (cleared by reset_store)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` counted events per ``window`` seconds for one subject."""

    kind: str
    subject: str
    limit: int
    window: int

    @property
    def key(self) -> str:
        """The counter's key."""
        return _subject_key(self.kind, self.subject)


def _retry_after(store: Store, limit: Limit) -> int:
    left = store.ttl(limit.key)
    return math.ceil(left) if left else limit.window


def check(limits: tuple[Limit, ...], detail: str) -> None:
    """429 with Retry-After when any of ``limits`` is used up (counts nothing)."""

    def _check(store: Store) -> None:
        for limit in limits:
            raw = store.get(limit.key)
            if raw is not None and int(raw) >= limit.limit:
                raise Throttled(_retry_after(store, limit), detail)

    _on_store(_check)


def count(limits: tuple[Limit, ...]) -> None:
    """Count one event against each of ``limits``."""

    def _count(store: Store) -> None:
        for limit in limits:
            store.incr(limit.key, ttl=limit.window)

    _on_store(_count)


def hit(limits: tuple[Limit, ...], detail: str) -> None:
    """Count one event against each of ``limits``; 429 once any goes over its limit."""

    def _hit(store: Store) -> None:
        over: list[Limit] = [
            limit for limit in limits if store.incr(limit.key, ttl=limit.window) > limit.limit
        ]
        if over:
            raise Throttled(max(_retry_after(store, limit) for limit in over), detail)

    _on_store(_hit)


# --------------------------------------------------------------------------- login


def _login_limits(account: str, address: str) -> tuple[Limit, ...]:
    settings = get_settings()
    return (
        Limit("login.account", account, settings.login_max_failures, settings.login_window),
        Limit(
            "login.address",
            address or "unknown",
            settings.login_max_failures_per_ip,
            settings.login_window,
        ),
    )


def check_login_allowed(account: str, address: str) -> None:
    """429 with Retry-After when this account or this address has failed too often lately."""
    check(_login_limits(account, address), "Too many failed logins; retry later")


def record_login_failure(account: str, address: str) -> None:
    """Count one failed login against the account and the address."""
    count(_login_limits(account, address))


def clear_account_failures(account: str) -> None:
    """A successful login wipes the account's failure count (not the address's)."""
    account_key = _login_limits(account, "")[0].key
    with contextlib.suppress(StoreUnavailable):
        get_store().delete(account_key)
    memory_store.delete(account_key)


# --------------------------------------------------------------------------- other doors


def registration(address: str) -> None:
    """Count a registration attempt from ``address``; 429 past the limit."""
    settings = get_settings()
    limit = Limit(
        "register.address",
        address or "unknown",
        settings.register_max_per_ip,
        settings.register_window,
    )
    hit((limit,), "Too many registrations from this address; retry later")


def password_reset(address: str, email: str) -> None:
    """Count a reset request per client address and per email; 429 past either limit."""
    settings = get_settings()
    window = settings.password_reset_window
    limits = (
        Limit("reset.address", address or "unknown", settings.password_reset_max_per_ip, window),
        Limit("reset.email", email.strip().lower(), settings.password_reset_max_per_email, window),
    )
    hit(limits, "Too many password reset requests; retry later")


def verification_resend(user_id: int) -> None:
    """Count a verification resend of one account (same allowance as reset emails)."""
    settings = get_settings()
    limit = Limit(
        "verify.user",
        str(user_id),
        settings.password_reset_max_per_email,
        settings.password_reset_window,
    )
    hit((limit,), "Too many verification emails; retry later")
