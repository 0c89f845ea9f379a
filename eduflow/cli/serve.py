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
    host: str | None = typer.Option(
        None,
        envvar="EDUFLOW_HOST",
        show_default=False,
        help="Interface to bind (default: 127.0.0.1).",
    ),
    port: int | None = typer.Option(
        None,
        min=1,
        max=65535,
        envvar="EDUFLOW_PORT",
        show_default=False,
        help="Port to bind (default: 8000).",
    ),
    workers: int | None = typer.Option(
        None,
        min=1,
        envvar="EDUFLOW_WORKERS",
        show_default=False,
        help="API worker processes (default: 1; more than 1 needs Redis).",
    ),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        envvar="EDUFLOW_FORWARDED_ALLOW_IPS",
        show_default=False,
        help="Proxies trusted for X-Forwarded-For/-Proto, comma-separated or '*' "
        "(default: 127.0.0.1).",
    ),
    keep_alive: int | None = typer.Option(
        None,
        min=1,
        envvar="EDUFLOW_KEEP_ALIVE_TIMEOUT",
        show_default=False,
        help="Idle keep-alive seconds (default: 75).",
    ),
    graceful_timeout: int | None = typer.Option(
        None,
        min=1,
        envvar="EDUFLOW_GRACEFUL_TIMEOUT",
        show_default=False,
        help="Seconds in-flight requests get on shutdown (default: 30).",
    ),
) -> None:
    """Run the HTTP API (options not given come from the settings: environment or .env)."""
    import os
    import signal

    import uvicorn

    from eduflow.config import get_settings, reset_settings
    from eduflow.db import dispose_engines, existing_sqlite_only
    from eduflow.errors import EduFlowError
    from eduflow.logging import configure_logging, get_logger

    settings = get_settings()
    if port is not None and port != settings.port:
        # The served processes (worker processes too) see the port they serve on: links
        # follow it when EDUFLOW_PUBLIC_BASE_URL is unset.
        os.environ["EDUFLOW_PORT"] = str(port)
        reset_settings()
        settings = get_settings()
    host = host or settings.host
    port = settings.port
    workers = workers or settings.workers
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
    with existing_sqlite_only(False):  # the embedded default creates its file on first start
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
    # timeout), run the lifespan shutdown (pools closed), then exit 0. uvicorn raises the
    # signal again once it has stopped; the handler set here makes that SIGTERM a no-op
    # (instead of dying of it) so a graceful stop exits 0, with one worker as with many.
    signal.signal(signal.SIGTERM, lambda *_: None)
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
