"""Extensions created at import time and bound to the app in create_app."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker

# ~40 MB of 4 KiB pages: far more than a few seconds of writes between the worker's checkpoints.
WAL_AUTOCHECKPOINT_PAGES = 10_000


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

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file without blocking readers or writers.

        Run by the worker on a schedule, so requests do not pay for checkpoints; a no-op on PostgreSQL.
        """
        if self.dialect != "sqlite":
            return
        assert self.engine is not None
        connection = self.engine.raw_connection()  # autocommit: a checkpoint cannot run inside a transaction
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.close()
        finally:
            connection.close()

    @property
    def dialect(self) -> str:
        assert self.engine is not None, "database not initialised"
        return self.engine.dialect.name


def make_engine(url: str) -> Engine:
    """Create the engine with the settings each backend needs for concurrent use."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        # Each engine gets its own lock: the connection class carries it.
        factory = type("SerializedConnection", (SerializedConnection,), {"write_lock": threading.Lock()})
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30, "factory": factory})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class SerializedConnection(sqlite3.Connection):
    """A pysqlite connection that holds its engine's in-process write lock from BEGIN to COMMIT or ROLLBACK.

    Under BEGIN IMMEDIATE every transaction takes SQLite's write lock. Threads that find it taken would wait
    in SQLite's busy handler, which polls with sleeps of up to 100 ms; queueing them on a Python lock first
    hands the database over the moment the previous transaction ends. Other processes (a `flask worker`,
    the SMTP server) still meet at SQLite's own lock and busy timeout.
    """

    write_lock: threading.Lock
    owner: int | None = None  # the thread holding write_lock (set on the per-engine subclass)
    holds_lock = False

    def acquire_write_lock(self, timeout: float) -> None:
        cls = type(self)
        if cls.owner == threading.get_ident():
            return  # this thread's other transaction holds it: waiting here could never end; let SQLite decide
        # On timeout, go on without it: SQLite's busy timeout then decides, as it would without this lock.
        self.holds_lock = self.write_lock.acquire(timeout=timeout)
        if self.holds_lock:
            cls.owner = threading.get_ident()

    def release_write_lock(self) -> None:
        if self.holds_lock:
            self.holds_lock = False
            type(self).owner = None
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


BUSY_TIMEOUT_SECONDS = 30.0
_FIRST_RETRY, _LONGEST_RETRY = 0.00005, 0.0002


def begin_immediate(connection: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write transaction in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, so a writer in another process
    (the SMTP server beside a busy worker) kept missing the short gaps between the worker's transactions and
    waited ~5 ms on average, 180 ms at worst. Retrying every 0.05 to 0.2 ms takes the lock soon after it is free
    (a failed try costs ~3 µs; a short sleep really lasts ~0.1 ms longer than asked on these machines).
    (Straight to the driver, too: SQLAlchemy's execution path costs more than SQLite takes to run this.)
    """
    connection.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout
        delay = _FIRST_RETRY
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, _LONGEST_RETRY)
    finally:
        connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")


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
        # The worker checkpoints the WAL every few seconds off the request path (Database.checkpoint); a
        # commit checkpoints (and waits for two fsyncs) only when the WAL outgrows this safety net.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, SerializedConnection):
            dbapi_connection.acquire_write_lock(timeout=30)
        try:
            begin_immediate(dbapi_connection)
        except BaseException:
            if isinstance(dbapi_connection, SerializedConnection):
                dbapi_connection.release_write_lock()
            raise


db = Database()
socketio = SocketIO()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
