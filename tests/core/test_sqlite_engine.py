"""The SQLite engine: writers from many threads queue up instead of failing or losing updates."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from app.extensions import Database, SerializedConnection, make_engine


def test_threads_doing_read_modify_write_never_lose_an_update(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'counter.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with engine.begin() as conn:  # BEGIN IMMEDIATE: the read below already holds the write lock
                    value = conn.execute(text("SELECT n FROM counter")).scalar_one()
                    conn.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 200
    assert errors == []
    engine.dispose()


def test_the_process_lock_is_released_by_commit_rollback_and_close(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    for end in ("commit", "rollback", "close"):
        conn = engine.connect()
        conn.execute(text("SELECT 1"))  # begins: takes the lock
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, SerializedConnection)
        assert dbapi.holds_lock
        if end == "close":
            conn.close()  # returned to the pool, which rolls back
        else:
            getattr(conn, end)()
            conn.close()
        assert not dbapi.holds_lock
        assert dbapi.write_lock.acquire(blocking=False), f"lock still held after {end}"
        dbapi.write_lock.release()
    engine.dispose()


def test_the_worker_checkpoint_moves_the_write_ahead_log_into_the_database_file(tmp_path: Path):
    database = Database()
    database.engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT NOT NULL)"))
    database.checkpoint()
    size_before = (tmp_path / "wal.db").stat().st_size
    with database.engine.begin() as conn:  # ~2 MB: well under the auto-checkpoint, so it stays in the WAL
        conn.execute(text("INSERT INTO notes VALUES (:body)"), [{"body": "x" * 2000} for _ in range(1000)])
    assert (tmp_path / "wal.db").stat().st_size == size_before

    database.checkpoint()

    assert (tmp_path / "wal.db").stat().st_size > size_before + 1_000_000
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar_one() == 1000
    database.engine.dispose()
