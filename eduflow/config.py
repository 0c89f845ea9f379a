"""Settings read once from the environment (prefix ``EDUFLOW_``) or a ``.env`` file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///./eduflow.db"
SECRET_KEY_FILE = ".eduflow-secret-key"
MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    """Every configuration key of the product; defaults give the embedded mode."""

    model_config = SettingsConfigDict(
        env_prefix="EDUFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production", "test"] = "development"
    # Secrets, and URLs that may carry a password, are SecretStr: no repr, dump or log line
    # shows them; the code that connects asks for the value (``.get_secret_value()``).
    database_url: SecretStr = SecretStr(DEFAULT_SQLITE_URL)
    read_database_url: SecretStr | None = Field(
        default=None, description="Optional read replica used for cached catalogue reads."
    )
    read_your_writes_seconds: int = Field(
        default=60,
        ge=1,
        description="seconds a writer's catalogue reads wait for the replica to replay its write",
    )
    redis_url: SecretStr | None = None
    secret_key: SecretStr | None = None

    access_token_ttl: int = Field(default=15 * 60, ge=30, description="seconds")
    refresh_token_ttl: int = Field(default=7 * 24 * 3600, ge=60, description="seconds")
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)

    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    login_window: int = Field(default=300, ge=1, description="seconds")
    auth_state_ttl: int = Field(
        default=300, ge=1, description="seconds a cached user/session auth state lives in Redis"
    )
    register_max_per_ip: int = Field(default=20, ge=1, description="registrations per window")
    register_window: int = Field(default=3600, ge=1, description="seconds")
    password_reset_ttl: int = Field(default=3600, ge=60, description="seconds a reset link lives")
    password_reset_max_per_email: int = Field(default=3, ge=1, description="requests per window")
    password_reset_max_per_ip: int = Field(default=20, ge=1, description="requests per window")
    password_reset_window: int = Field(default=3600, ge=1, description="seconds")
    email_verification_ttl: int = Field(
        default=7 * 24 * 3600, ge=60, description="seconds a verification link lives"
    )
    require_verified_email: bool = Field(
        default=False, description="enrollment requires a verified email address"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    smtp_url: SecretStr | None = None
    mail_from: str = "EduFlow <no-reply@eduflow.local>"
    mail_dir: Path = Path("./mail")
    public_base_url: str = Field(
        default="http://localhost:8000",
        description="scheme and host clients use: the base of links in emails and list pages "
        "(unset: http://localhost:{port})",
    )
    mail_templates_dir: Path | None = Field(
        default=None, description="Directory of email templates that replace the shipped ones"
    )

    cache_ttl: int = Field(default=300, ge=1, description="seconds")
    certificate_pdf_ttl: int = Field(
        default=24 * 3600, ge=1, description="seconds a rendered certificate PDF stays cached"
    )
    pending_ttl: int = Field(default=24 * 3600, ge=1, description="seconds")
    idempotency_ttl: int = Field(default=24 * 3600, ge=1, description="seconds")
    job_retry_intervals: list[int] = Field(default_factory=lambda: [10, 60, 300])
    job_timeout: int = Field(default=60, ge=1, description="seconds one job may run")
    job_lock_ttl: int = Field(
        default=10,
        ge=1,
        description="seconds a task's Redis lock outlives its holder (renewed while it runs)",
    )
    smtp_timeout: float = Field(default=15, gt=0, description="seconds")
    worker_maintenance_interval: int = Field(
        default=5, ge=1, description="seconds between checks for jobs of dead workers"
    )
    outbox_sweep_interval: float = Field(default=30, gt=0, description="seconds")
    outbox_retention_days: int = Field(default=7, ge=1)
    expiry_interval: int = Field(default=3600, ge=60, description="seconds between expiry runs")
    waitlist_offer_ttl: int = Field(
        default=24 * 3600, ge=1, description="seconds a waitlist offer holds its seat"
    )
    waitlist_expiry_interval: int = Field(
        default=60, ge=1, description="seconds between runs of the waitlist offer expiry"
    )
    report_cron: str = Field(default="5 0 * * *", description="cron (UTC) of the daily report")

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    db_connect_timeout: int = Field(default=3, ge=1, description="seconds (libpq waits 2 at least)")
    db_request_deadline: float = Field(
        default=5.0,
        gt=0,
        description="seconds from a request's start after which its waits for the database "
        "give up: the request gets a 503 (the client-side bound; see eduflow.deadline)",
    )
    db_tcp_user_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="ms unacknowledged data may wait before the kernel "
        "drops the connection (0: the system default)",
    )
    db_pgbouncer: bool = Field(
        default=False,
        description="connections go through PgBouncer in transaction pooling: no server-side "
        "prepared statements, the statement timeout is set in each transaction",
    )
    enroll_threads: int = Field(
        default=4, ge=1, description="threads per server process that run enrollments"
    )
    progress_threads: int = Field(
        default=2,
        ge=1,
        description="threads per server process that record progress batches (each records "
        "a group of concurrent batches in one transaction)",
    )
    progress_group_size: int = Field(
        default=32,
        ge=1,
        le=256,
        description="most progress batches one transaction records together (1: one by one)",
    )

    # `eduflow serve` (its --host, --port and --workers read these too).
    host: str = Field(default="127.0.0.1", description="interface `eduflow serve` binds")
    port: int = Field(default=8000, ge=1, le=65535, description="port `eduflow serve` binds")
    workers: int = Field(
        default=1, ge=1, description="API worker processes (more than 1 needs Redis)"
    )
    # `eduflow serve` in production (behind a reverse proxy).
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxy addresses trusted for X-Forwarded-For/-Proto, comma-separated.",
    )
    keep_alive_timeout: int = Field(
        default=75, ge=1, description="seconds; keep above the proxy's upstream keep-alive"
    )
    graceful_timeout: int = Field(
        default=30, ge=1, description="seconds in-flight requests get to finish on shutdown"
    )

    cors_origins: str = Field(
        default="",
        description="Browser origins allowed to call the API, comma-separated "
        "(e.g. https://app.example.com); empty: no CORS headers.",
    )
    api_docs: bool = Field(
        default=True, description="serve /api/docs/, /api/redoc/ and /api/schema/ (off: 404)"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port where `eduflow worker` / `eduflow scheduler` serve /metrics",
    )

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("read_database_url", "redis_url", "secret_key", "smtp_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _links_follow_the_port(self) -> Settings:
        if "public_base_url" not in self.model_fields_set:
            self.public_base_url = f"http://localhost:{self.port}"
        return self

    @property
    def is_embedded(self) -> bool:
        """True without Redis: cache, throttling and jobs live inside one process."""
        return not self.redis_url

    @property
    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` as a list, without blanks or trailing slashes."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def is_sqlite(self) -> bool:
        """True when the primary database is a SQLite file."""
        return self.database_url.get_secret_value().startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The signing key; production requires one, development keeps a local random one."""
        if self.secret_key:
            configured = self.secret_key.get_secret_value()
            if len(configured.encode()) < MIN_SECRET_KEY_BYTES:
                raise ValueError(
                    f"EDUFLOW_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long"
                )
            return configured
        if self.env == "production":
            raise ValueError("EDUFLOW_SECRET_KEY is required when EDUFLOW_ENV=production")
        # A per-directory random key beats a well-known constant: tokens of one
        # development install can never be forged with a key found in the source.
        path = Path(SECRET_KEY_FILE)
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if len(key.encode()) < MIN_SECRET_KEY_BYTES:
            key = secrets.token_urlsafe(48)
            path.write_text(key)
            path.chmod(0o600)
        return key


def reveal(value: SecretStr | None) -> str | None:
    """The plain value of an optional secret setting, for the code that connects with it."""
    return value.get_secret_value() if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read lazily on first use."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI's --env handling)."""
    get_settings.cache_clear()
