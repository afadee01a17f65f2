"""Extensions created at import time and bound to the app in create_app."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class Database:
    """The engine and a thread-local session; request, worker and SMTP threads each get their own."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(sessionmaker(expire_on_commit=False))

    def init_app(self, app: Flask) -> None:
        self.engine = make_engine(app.config["DATABASE_URL"])
        self.session.remove()
        self.session.configure(bind=self.engine)
        app.teardown_appcontext(self._remove_session)

    def _remove_session(self, exc: BaseException | None = None) -> None:
        self.session.remove()

    @property
    def dialect(self) -> str:
        assert self.engine is not None, "database not initialised"
        return self.engine.dialect.name


def make_engine(url: str) -> Engine:
    """Create the engine with the settings each backend needs for concurrent use."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers, foreign keys on, and BEGIN IMMEDIATE so writers queue instead of failing.

    pysqlite's deferred transactions fail with "database is locked" when a reader upgrades to a writer
    while another thread writes; taking the write lock up front lets busy_timeout do its job.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


db = Database()
socketio = SocketIO()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
