"""Fixtures of the outage drills: own PostgreSQL + Redis and ``eduflow serve`` on them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.stack import LocalPostgres, LocalRedis, ServeProcess, run_eduflow

DB_DEADLINE_S = 3.0  # EDUFLOW_DB_REQUEST_DEADLINE of the drills


def drill_env(pg: LocalPostgres, redis: LocalRedis, tmp: Path) -> dict[str, str]:
    """The environment of EduFlow processes that use the drill's own servers."""
    env = dict(os.environ)
    env.update(
        {
            "EDUFLOW_ENV": "production",
            "EDUFLOW_DATABASE_URL": pg.url,
            "EDUFLOW_REDIS_URL": redis.url,
            "EDUFLOW_DB_STATEMENT_TIMEOUT_MS": "2000",
            "EDUFLOW_DB_CONNECT_TIMEOUT": "2",
            "EDUFLOW_DB_REQUEST_DEADLINE": str(DB_DEADLINE_S),
            "EDUFLOW_BCRYPT_ROUNDS": "4",
            "EDUFLOW_DB_POOL_SIZE": "4",
            "EDUFLOW_DB_MAX_OVERFLOW": "4",
            "EDUFLOW_MAIL_DIR": str(tmp / "mail"),
            "EDUFLOW_OUTBOX_SWEEP_INTERVAL": "1",
            "EDUFLOW_LOG_LEVEL": "WARNING",
            # The drills register many accounts from loopback: they measure outages, not
            # the registration throttle.
            "EDUFLOW_REGISTER_MAX_PER_IP": "100000",
        }
    )
    env.pop("EDUFLOW_SMTP_URL", None)
    return env


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Own PostgreSQL + Redis (migrated), and ``eduflow serve --workers 2`` on them."""
    tmp = tmp_path_factory.mktemp("drill")
    pg, redis = LocalPostgres(), LocalRedis()
    server: ServeProcess | None = None
    try:
        pg.start()
        redis.start()
        env = drill_env(pg, redis, tmp)
        run_eduflow(env, "db", "upgrade")
        server = ServeProcess(env, tmp / "serve.log")
        server.wait_healthy()
        yield {"pg": pg, "redis": redis, "server": server, "env": env, "tmp": tmp}
    finally:
        if server is not None:
            server.stop()
        pg.destroy()
        redis.destroy()


@pytest.fixture
def running_drill(drill: dict[str, Any]) -> dict[str, Any]:
    """The drill stack with both servers up (an earlier failed drill may have left one down)."""
    if not drill["pg"].is_running():
        drill["pg"].start()
    if not drill["redis"].is_running():
        drill["redis"].start()
    return drill
