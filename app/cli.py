"""Command-line tools: `flask setup`, `create-user`, `worker`, `mail-spool`, `seed-demo`, `db-upgrade`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.models.inbound_mail import SPOOL_STATUSES

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    """Apply every Alembic migration to the database at ``url``."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@click.command("db-upgrade")
@with_appcontext
def db_upgrade_command() -> None:
    """Apply the database migrations."""
    upgrade_database(current_app.config["DATABASE_URL"])
    click.echo("database is up to date")


@click.command("setup")
@with_appcontext
def setup_command() -> None:
    """Migrate the database and create the first admin if there is none."""
    from app.services.users import ensure_admin

    upgrade_database(current_app.config["DATABASE_URL"])
    user, generated = ensure_admin(current_app.config["ADMIN_EMAIL"], current_app.config["ADMIN_PASSWORD"])
    if user is not None:
        click.echo(f"Created the first admin: {user.email}")
        if generated:
            click.echo(f"Generated password (shown once, change it after logging in): {generated}")


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default="agent", show_default=True)
@click.password_option()
@with_appcontext
def create_user_command(email: str, name: str, role: str, password: str) -> None:
    """Create a staff account."""
    from app.services.errors import DomainError
    from app.services.users import create_user

    try:
        user = create_user(email, name, password, role)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.role} {user.email} (id {user.id})")


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the worker (outbox, inbound mail spool, scheduled jobs) in this process until interrupted."""
    import signal

    from app.worker import Worker

    worker = Worker(current_app._get_current_object())  # type: ignore[attr-defined]

    def _stop(_signum: int, _frame: object) -> None:
        # Finish the message in hand and exit; an unfinished claim would otherwise wait out its lease.
        worker.stopping.set()
        worker.wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run_forever()
    worker.stop()


@click.group("mail-spool")
def mail_spool_group() -> None:
    """Inbound mail accepted over SMTP: what became of it, and retrying what failed."""


@mail_spool_group.command("list")
@click.option("--status", type=click.Choice(SPOOL_STATUSES), default=None)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def mail_spool_list_command(status: str | None, limit: int) -> None:
    """List spooled mail, newest first (all statuses unless --status)."""
    from app.services.mail import list_spooled_mail

    for row in list_spooled_mail(status, limit=limit):
        click.echo(
            f"{row.id}\t{row.received_at:%Y-%m-%d %H:%M:%S}\t{row.status}\t{row.attempts}\t"
            f"{row.mail_from or '<>'}\t{row.outcome or ''}"
        )


@mail_spool_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@with_appcontext
def mail_spool_retry_command(ids: tuple[int, ...]) -> None:
    """Queue failed mail (these ids, or every failed one) for the worker again."""
    from app.services.mail import retry_spooled_mail

    count = len(retry_spooled_mail(list(ids) if ids else None))
    click.echo(f"queued {count} failed mail(s) again")


@click.command("seed-demo")
@click.option("--customers", default=50, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--password", default=None, help="Password of the demo staff accounts (default: generated, printed).")
@with_appcontext
def seed_demo_command(customers: int, seed: int, password: str | None) -> None:
    """Fill an empty database with a believable contact centre (does nothing when customers exist)."""
    from app.services.demo import seed_demo

    summary = seed_demo(customers=customers, seed=seed, password=password)
    click.echo(summary)


def init_app(app: Flask) -> None:
    for command in (
        db_upgrade_command,
        setup_command,
        create_user_command,
        worker_command,
        mail_spool_group,
        seed_demo_command,
    ):
        app.cli.add_command(command)
