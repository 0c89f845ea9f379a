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


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="API worker processes (more than 1 needs Redis)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from eduflow.config import get_settings
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
    get_logger("eduflow.serve").info(
        "serve_starting", host=host, port=port, workers=workers, embedded=settings.is_embedded
    )
    uvicorn.run(
        "eduflow.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_keep_alive=15,
        timeout_graceful_shutdown=20,
        access_log=False,
        log_config=None,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the root app."""
    app.command("serve")(serve)
