"""`flask smtp-server`: the command production runs, in its own process, against a real database."""

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


def test_flask_smtp_server_receives_and_stores_mail_until_terminated(tmp_path: Path):
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
            assert client.sendmail("anna@example.com", [MAILBOX], mail) == {}
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT message_id_header, text FROM messages")).all()
    engine.dispose()
    assert [tuple(row) for row in stored] == [("<cli-1@example.com>", "Hi!")]
