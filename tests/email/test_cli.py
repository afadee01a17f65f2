"""`flask smtp-server`, `flask worker` and `flask mail-spool`: the commands production runs, each in its own
process, against a real database. The SMTP server only spools; the worker stores what it spooled."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import ROOT, free_port
from tests.email.conftest import MAILBOX, crlf


def _query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql)).all()]
    finally:
        engine.dispose()


def test_flask_smtp_server_spools_mail_until_terminated_and_flask_worker_stores_it(tmp_path: Path):
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SWITCHBOARD_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": "cli-secret",
        "EMBEDDED_WORKER": "0",
        "EMBEDDED_SMTP": "0",
    }
    prepare = (
        "from app import create_app\nfrom app.extensions import db\nfrom app.models import Base\n"
        "from app.services.channels import create_channel\napp = create_app()\nwith app.app_context():\n"
        f"    Base.metadata.create_all(db.engine)\n    create_channel('email', 'Support', address={MAILBOX!r})\n"
    )
    prepared = subprocess.run([sys.executable, "-c", prepare], cwd=ROOT, env=env, capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    port = free_port()
    flask = str(Path(sys.executable).parent / "flask")

    def run_flask(*args: str) -> str:
        done = subprocess.run([flask, "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    server = subprocess.Popen(
        [flask, "--app", "wsgi", "smtp-server", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "smtp-server did not start"
                time.sleep(0.1)
        with client:
            mail = crlf(b"From: Anna <anna@example.com>\nSubject: Hello\nMessage-ID: <cli-1@example.com>\n\nHi!\n")
            client.ehlo()
            assert client.mail("anna@example.com")[0] == 250
            assert client.rcpt(MAILBOX)[0] == 250
            assert client.data(mail) == (250, b"2.0.0 Ok: queued as 1")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()

    # The server spooled it and stored nothing; `flask mail-spool list` shows it waiting.
    assert _query(database_url, "SELECT id, status, mail_from FROM inbound_mail") == [(1, "queued", "anna@example.com")]
    assert _query(database_url, "SELECT id FROM messages") == []
    [listed] = run_flask("mail-spool", "list").splitlines()
    assert listed.split("\t")[0] == "1"
    assert listed.split("\t")[2:5] == ["queued", "0", "anna@example.com"]

    # `flask worker` (another process, as production runs it) finds it in the spool and stores it.
    worker = subprocess.Popen(
        [flask, "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not _query(database_url, "SELECT id FROM messages"):
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
            assert time.monotonic() < deadline, "flask worker did not store the spooled mail"
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()

    stored = _query(database_url, "SELECT id, message_id_header, text FROM messages")
    assert [row[1:] for row in stored] == [("<cli-1@example.com>", "Hi!")]
    assert _query(database_url, "SELECT status, attempts, outcome, message_id FROM inbound_mail") == [
        ("stored", 1, f"stored as message {stored[0][0]}", stored[0][0])
    ]
    [listed] = run_flask("mail-spool", "list", "--status", "stored").splitlines()
    assert listed.split("\t")[2:] == ["stored", "1", "anna@example.com", f"stored as message {stored[0][0]}"]
    assert run_flask("mail-spool", "list", "--status", "queued") == ""
