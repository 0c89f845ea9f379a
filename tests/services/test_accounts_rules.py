"""Pure and small rules of accounts: --since parsing, the fixed-window throttle, tokens."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eduflow.errors import EduFlowError, Throttled
from eduflow.services import audit, throttle

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
UNITS = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_subjects = itertools.count()


@given(amount=st.integers(min_value=0, max_value=999_999), unit=st.sampled_from(sorted(UNITS)))
def test_relative_since_is_that_long_before_now(amount: int, unit: str) -> None:
    try:
        expected = NOW - amount * UNITS[unit]
    except OverflowError:  # before year 1: a clear error, not a crash
        with pytest.raises(EduFlowError):
            audit.parse_since(f"{amount}{unit}", now=NOW)
        return
    assert audit.parse_since(f"{amount}{unit}", now=NOW) == expected


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)))
def test_iso_since_round_trips_and_naive_means_utc(moment: datetime) -> None:
    assert audit.parse_since(moment.isoformat()) == moment.replace(tzinfo=UTC)
    aware = moment.replace(tzinfo=UTC)
    assert audit.parse_since(aware.isoformat()) == aware


@pytest.mark.parametrize("text", ["", "yesterday", "5y", "-3d", "12 h", "2026-13-01"])
def test_bad_since_is_a_clear_error(text: str) -> None:
    with pytest.raises(EduFlowError) as caught:
        audit.parse_since(text)
    assert caught.value.status == 422 and "since" in caught.value.detail


@settings(max_examples=30, deadline=None)
@given(limit=st.integers(min_value=1, max_value=6), attempts=st.integers(min_value=0, max_value=12))
def test_a_limit_admits_exactly_limit_events_per_window(limit: int, attempts: int) -> None:
    """Whatever the numbers, the first ``limit`` events pass and every later one is a 429
    whose Retry-After lies within the window (real Redis)."""
    rule = throttle.Limit("test.property", f"subject-{next(_subjects)}", limit, 300)
    outcomes = []
    for _ in range(attempts):
        try:
            throttle.hit((rule,), "slow down")
            outcomes.append("ok")
        except Throttled as exc:
            assert 0 < exc.retry_after <= 300
            outcomes.append("429")
    assert outcomes == ["ok"] * min(limit, attempts) + ["429"] * max(0, attempts - limit)
