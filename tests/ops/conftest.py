"""Fresh, empty databases for the operations tests (migrations and `flask setup` start from nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PostgresDatabase, require_service


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    require_service("PostgreSQL", 5432)
    database = PostgresDatabase()
    try:
        yield database.url
    finally:
        database.drop()
