"""Fixtures of the service tests."""

from __future__ import annotations

from typing import Any

import pytest

from eduflow import schema


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: Any) -> str:
    """Run the test on PostgreSQL and on the embedded SQLite file."""
    if request.param == "sqlite":
        request.getfixturevalue("sqlite_url")
        schema.upgrade("head")
    return str(request.param)
