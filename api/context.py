"""The running service's shared state: settings, database, clock. One per process (or per test)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, migrate, session_factory
from api.settings import Settings
from api.tables import utcnow


@dataclass
class Service:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = utcnow
    holder: str = field(default="")
    #: Slot boards kept while the plan does not change (`api.booking`): built in about a second for a
    #: 2,000-visit week, asked in milliseconds.
    boards: dict[str, Any] = field(default_factory=dict)
    boards_guard: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Service:
        engine = make_engine(settings.database_url)
        migrate(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            clock=clock,
            holder=f"{socket.gethostname()}:{os.getpid()}:{id(engine):x}",
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def close(self) -> None:
        """Hand everything back: the SQLite write-ahead log folded into the file, connections closed."""
        if self.engine.dialect.name == "sqlite":
            with contextlib.suppress(Exception), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.engine.dispose()
