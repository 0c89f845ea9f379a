"""Login throttling: fixed-window failure counters per account and per client address.

Counters live in the Store (Redis, or in-process on the embedded default) so every API
process shares them. When Redis does not answer, throttling is skipped (logged) rather
than locking everybody out: login itself still checks the password against the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import math

from eduflow.cache.stores import StoreUnavailable, get_store, key
from eduflow.config import get_settings
from eduflow.errors import Throttled
from eduflow.logging import get_logger


def _account_key(account: str) -> str:
    # Hashed: usernames/emails of any shape make short, safe keys and never show up in
    # `cache keys` output.
    digest = hashlib.sha256(account.encode()).hexdigest()[:32]
    return key("throttle", "login", "account", digest)


def _address_key(address: str) -> str:
    return key("throttle", "login", "address", address or "unknown")


def check_login_allowed(account: str, address: str) -> None:
    """429 with Retry-After when this account or this address has failed too often lately."""
    settings = get_settings()
    store = get_store()
    limits = (
        (_account_key(account), settings.login_max_failures),
        (_address_key(address), settings.login_max_failures_per_ip),
    )
    try:
        for counter_key, limit in limits:
            raw = store.get(counter_key)
            if raw is not None and int(raw) >= limit:
                left = store.ttl(counter_key)
                retry_after = math.ceil(left) if left else settings.login_window
                raise Throttled(retry_after, "Too many failed logins; retry later")
    except StoreUnavailable:
        get_logger("eduflow.auth").warning("login_throttle_unavailable")


def record_login_failure(account: str, address: str) -> None:
    """Count one failed login against the account and the address."""
    window = get_settings().login_window
    store = get_store()
    try:
        store.incr(_account_key(account), ttl=window)
        store.incr(_address_key(address), ttl=window)
    except StoreUnavailable:
        get_logger("eduflow.auth").warning("login_throttle_unavailable")


def clear_account_failures(account: str) -> None:
    """A successful login wipes the account's failure count (not the address's)."""
    with contextlib.suppress(StoreUnavailable):
        get_store().delete(_account_key(account))
