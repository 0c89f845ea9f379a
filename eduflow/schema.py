"""Alembic wrappers: upgrade, downgrade, current, revision, and the start-up schema check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from eduflow.config import get_settings
from eduflow.db import get_engine, normalize_url


def migrations_dir() -> Path:
    """Where the migration scripts are: inside the installed package, or the source tree."""
    import eduflow

    package_dir = Path(eduflow.__file__).parent
    installed = package_dir / "migrations"
    if (installed / "env.py").exists():
        return installed
    return package_dir.parent / "alembic"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our scripts and the configured database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option(
        "sqlalchemy.url", normalize_url(url or get_settings().database_url.get_secret_value())
    )
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    """Migrate the database down to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of EduFlow."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_known_revision(revision: str | None) -> bool:
    """True when ``revision`` is base or one of this version's migrations."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic: "Can't locate revision"
        return False


def is_up_to_date(url: str | None = None) -> bool:
    """True when the database schema is at the shipped head."""
    return current_revision(url) == head_revision()


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for one database: leaves out the model indexes that
    exist only on another one (``Index.ddl_if``, e.g. PostgreSQL's trigram indexes)."""

    def include(obj: Any, _name: Any, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        only = getattr(obj, "_ddl_if", None)
        if type_ == "index" and only is not None and only.dialect is not None:
            return bool(only.dialect == dialect)
        return True

    return include
