"""Database scale-out points: pool sizing, pool exhaustion, statement timeout, read replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from eduflow.errors import Unavailable
from tests.conftest import TEST_DATABASE_URL, reset_process_state
from tests.ops.stack import free_port


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change EDUFLOW_* for one test; engines and settings are rebuilt before and after."""
    from eduflow.config import reset_settings
    from eduflow.db import dispose_engines

    yield monkeypatch
    monkeypatch.undo()
    reset_settings()
    dispose_engines()


def rebuild() -> None:
    from eduflow.config import reset_settings
    from eduflow.db import dispose_engines

    reset_settings()
    dispose_engines()


def test_pool_is_sized_from_settings(settings_env: pytest.MonkeyPatch) -> None:
    from eduflow.db import get_engine

    settings_env.setenv("EDUFLOW_DB_POOL_SIZE", "3")
    settings_env.setenv("EDUFLOW_DB_MAX_OVERFLOW", "2")
    rebuild()
    pool = get_engine().pool
    assert pool.size() == 3  # type: ignore[attr-defined]
    assert pool._max_overflow == 2  # type: ignore[attr-defined]


def test_statement_timeout_cancels_a_runaway_query_with_503(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from eduflow.db import session_scope

    settings_env.setenv("EDUFLOW_DB_STATEMENT_TIMEOUT_MS", "300")
    rebuild()
    started = time.monotonic()
    with pytest.raises(Unavailable), session_scope() as session:
        session.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 2.0
    with session_scope() as session:  # the pool is still usable afterwards
        assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"


def test_exhausted_pool_is_a_503_after_the_connect_timeout(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from eduflow.db import session_scope

    settings_env.setenv("EDUFLOW_DB_POOL_SIZE", "1")
    settings_env.setenv("EDUFLOW_DB_MAX_OVERFLOW", "0")
    settings_env.setenv("EDUFLOW_DB_CONNECT_TIMEOUT", "1")
    rebuild()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(Unavailable, match="overloaded"), session_scope() as session:
            session.execute(text("SELECT 1"))
        assert 0.9 < time.monotonic() - started < 3.0
    finally:
        release.set()
        holder.join()


def test_replica_reads_use_the_read_url_and_everything_else_the_primary(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from eduflow.db import session_scope

    # A replica that does not answer: only replica reads notice it.
    settings_env.setenv(
        "EDUFLOW_READ_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    settings_env.setenv("EDUFLOW_DB_CONNECT_TIMEOUT", "1")
    rebuild()
    with session_scope(read_only=True) as session:  # must see the caller's own writes
        assert session.execute(text("SELECT 1")).scalar() == 1
    with session_scope() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(Unavailable), session_scope(replica=True) as session:
        session.execute(text("SELECT 1"))


def test_replica_reads_fall_back_to_the_primary_without_a_read_url() -> None:
    from eduflow import db_routing
    from eduflow.db import get_engine, get_read_engine, session_scope

    assert get_read_engine() is get_engine()
    with session_scope(replica=True) as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    assert not db_routing.configured()
    assert db_routing.current_position() is None  # nothing asked of the primary
    assert db_routing.read(lambda s: s.execute(text("SELECT 1")).scalar(), reader=1) == 1


def test_routed_reads_survive_a_replica_that_refuses_connections(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from eduflow import db_routing
    from eduflow.metrics import REPLICA_READS

    settings_env.setenv(
        "EDUFLOW_READ_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    rebuild()
    db_routing.replica.reset()
    down = REPLICA_READS.labels("down")._value.get()
    started = time.monotonic()
    for _ in range(3):  # the first fails over; the next two skip the replica at once
        assert db_routing.read(lambda s: s.execute(text("SELECT 2")).scalar()) == 2
    assert time.monotonic() - started < 2.0
    assert REPLICA_READS.labels("down")._value.get() == down + 1
    # A replica that is a primary (not in recovery) has everything: the position rule holds.
    settings_env.setenv("EDUFLOW_READ_DATABASE_URL", TEST_DATABASE_URL)
    rebuild()
    position = db_routing.current_position()
    assert position is not None and position > 0
    assert db_routing.read(lambda s: s.execute(text("SELECT 3")).scalar(), since=position) == 3


def test_a_signed_in_reader_reads_the_primary_while_redis_cannot_say_what_it_wrote(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from eduflow import db_routing
    from eduflow.metrics import REPLICA_READS

    settings_env.setenv("EDUFLOW_READ_DATABASE_URL", TEST_DATABASE_URL)  # a "replica"
    settings_env.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    behind, served = (REPLICA_READS.labels(o)._value.get() for o in ("behind", "replica"))
    one = lambda s: s.execute(text("SELECT 1")).scalar()  # noqa: E731
    started = time.monotonic()
    for _ in range(3):
        assert db_routing.read(one, reader=7) == 1  # on the primary
    assert db_routing.read(one) == 1  # anonymous: on the replica
    assert time.monotonic() - started < 1.5  # the store is not asked on every read
    assert REPLICA_READS.labels("behind")._value.get() == behind + 3
    assert REPLICA_READS.labels("replica")._value.get() == served + 1
