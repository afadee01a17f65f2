"""The content-addressed file store: files are as durable as the commits that point at them."""

from __future__ import annotations

import os
import uuid

import pytest

from app.services import attachments as files


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", counting_fsync)
    return calls


def test_a_stored_file_is_fsynced_exactly_when_the_database_fsyncs_its_commits(app, fsyncs):
    data = f"invoice {uuid.uuid4()}".encode()  # new bytes: a file already in the store is not written again
    digest = files.store_bytes(data)

    assert files.read_bytes(digest) == data
    # SQLite (WAL, synchronous=NORMAL) commits without fsync; PostgreSQL fsyncs every commit.
    assert len(fsyncs) == (0 if app.config["DATABASE_URL"].startswith("sqlite") else 1)


@pytest.mark.parametrize("configured", [True, False])
def test_fsync_files_overrides_the_default(app, fsyncs, monkeypatch, configured):
    monkeypatch.setitem(app.config, "FSYNC_FILES", configured)

    files.store_bytes(f"report {uuid.uuid4()}".encode())

    assert len(fsyncs) == (1 if configured else 0)


def test_storing_the_same_bytes_twice_writes_one_file(app):
    first = files.store_bytes(b"same bytes")
    second = files.store_bytes(b"same bytes")

    assert first == second
    assert not [p for p in files.path_for(first).parent.iterdir() if p.name.startswith(".incoming-")]
