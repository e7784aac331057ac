"""Engine, sessions and schema migrations (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"

#: Pooled connections per process: as many as request threads that touch the database at once.
POOL_SIZE = 30


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL: technicians keep reading routes while a re-plan writes the next version.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # As many pooled connections as request threads: overflow connections are opened and closed
    # per burst, and a new PostgreSQL connection (a forked backend) costs milliseconds each.
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=5)


def warm_pool(engine: Engine, count: int = POOL_SIZE) -> None:
    """Open the pool's connections at start-up, so the first burst of pulls after a (re)start does not
    fork PostgreSQL backends one by one while it waits (that burst was the worst second of a load
    test). SQLite has nothing to open."""
    if engine.dialect.name == "sqlite":
        return
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(engine.connect())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe from several processes on PostgreSQL)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7423001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
