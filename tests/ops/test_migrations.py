"""The migrations: one head, and `upgrade head` on an empty database builds exactly the models' schema."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.cli import alembic_config, upgrade_database
from app.extensions import make_engine
from app.models import Base


def test_migrations_have_a_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}; merge them"


def test_upgrade_head_on_an_empty_database_yields_the_models_schema(empty_database_url):
    upgrade_database(empty_database_url)

    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True, "target_metadata": Base.metadata}
            )
            diffs = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert diffs == [], "the models and the migrations differ; regenerate or add a migration:\n" + "\n".join(
        map(str, diffs)
    )
    assert tables == set(Base.metadata.tables)


def test_upgrade_is_idempotent(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.upgrade(config, "head")  # a second `flask setup` on an up-to-date database changes nothing
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            version = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    assert version == ScriptDirectory.from_config(config).get_current_head()
