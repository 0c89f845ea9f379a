"""``eduflow serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import typer


def prepare_database() -> None:
    """Embedded SQLite is created and migrated on first start; PostgreSQL must be migrated."""
    from eduflow import schema
    from eduflow.config import get_settings
    from eduflow.errors import EduFlowError

    settings = get_settings()
    if settings.is_sqlite:
        schema.upgrade("head")
        return
    if not schema.is_up_to_date():
        raise EduFlowError(
            "the database schema is not migrated to this version; run `eduflow db upgrade` first"
        )


def prepare_metrics_dir() -> str | None:
    """Let every worker process count into one /metrics view (prometheus multiprocess mode).

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied of the last run's files), else a
    fresh temporary directory (returned, for removal at exit); the worker processes
    inherit the variable.
    """
    import os
    import tempfile
    from pathlib import Path

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    created = tempfile.mkdtemp(prefix="eduflow-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="API worker processes (more than 1 needs Redis)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies trusted for X-Forwarded-For/-Proto, comma-separated or '*' "
        "[default: EDUFLOW_FORWARDED_ALLOW_IPS].",
    ),
    keep_alive: int | None = typer.Option(
        None, min=1, help="Idle keep-alive seconds [default: EDUFLOW_KEEP_ALIVE_TIMEOUT]."
    ),
    graceful_timeout: int | None = typer.Option(
        None,
        min=1,
        help="Seconds in-flight requests get on shutdown [default: EDUFLOW_GRACEFUL_TIMEOUT].",
    ),
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from eduflow.config import get_settings
    from eduflow.db import dispose_engines
    from eduflow.errors import EduFlowError
    from eduflow.logging import configure_logging, get_logger

    settings = get_settings()
    try:
        settings.resolved_secret_key()
    except ValueError as exc:
        raise EduFlowError(str(exc)) from exc
    if workers > 1 and settings.is_embedded:
        raise EduFlowError(
            "--workers > 1 needs EDUFLOW_REDIS_URL: without Redis the cache, throttling, "
            "idempotency keys and jobs live inside one server process"
        )
    if reload and workers > 1:
        raise EduFlowError("--reload cannot be combined with --workers > 1")
    configure_logging()
    prepare_database()
    # The supervisor process serves nothing: it must not keep database connections open
    # next to the pools of its worker processes.
    dispose_engines()
    metrics_dir = prepare_metrics_dir() if workers > 1 else None
    trusted = forwarded_allow_ips or settings.forwarded_allow_ips
    get_logger("eduflow.serve").info(
        "serve_starting",
        host=host,
        port=port,
        workers=workers,
        embedded=settings.is_embedded,
        forwarded_allow_ips=trusted,
    )
    # SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to the graceful
    # timeout), run the lifespan shutdown (pools closed), then exit 0.
    try:
        uvicorn.run(
            "eduflow.api.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            proxy_headers=True,
            forwarded_allow_ips=trusted,
            timeout_keep_alive=keep_alive or settings.keep_alive_timeout,
            timeout_graceful_shutdown=graceful_timeout or settings.graceful_timeout,
            backlog=2048,
            access_log=False,
            log_config=None,
            server_header=False,
        )
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the root app."""
    app.command("serve")(serve)
