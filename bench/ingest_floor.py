"""Benchmark: the floor under ANY durable ingest endpoint on this server and machine, against a no-op.

    .venv/bin/python bench/ingest_floor.py [--requests 2000] [--rounds 2] [--concurrency 8] [--clients 2]

The inbound-ingest target (bench/ingest.py, bench/sms_ingest.py) asks for ingest at ≥ 0.5 x the rate of a
no-op endpoint of the same server. This asks how close to that no-op ANY endpoint can get if it validates
its input, checks a token and acknowledges only after a durable commit: the least that an "accept into a
durable queue, acknowledge after commit, ingest later" design must do. If even that floor is below 0.5,
the target is out of reach on this stack (Flask, gunicorn gthread in one process, SQLAlchemy, SQLite), however
ingest itself is written.

It starts one gunicorn server (the production gunicorn.conf.py: gthread, one process, embedded outbox worker)
on a free port with a fresh SQLite database, then measures, in alternating rounds of the same run, a ladder of
POST endpoints that all take the api channel's inbound JSON body and bearer header:

  0. noop        answers 202 at once, without reading the body (the baseline);
  1. validate    the real ``@validate(body=InboundBody)`` and the sender's ``Identity.parse``; no database;
  2. token       1 + the real bearer-token check (``_bearer_channel``): one database read;
  3. commit      2 + one INSERT of the validated body as JSON into a bench table and a commit, through the
                 SQLAlchemy session, then 202;
  4. raw-commit  3 with the INSERT and COMMIT through the raw sqlite3 connection (BEGIN IMMEDIATE and the
                 engine's write lock, as the engine does), bypassing the session: what SQLAlchemy costs;
  5. ingest      the real ``/api/v1/channels/ID/inbound`` (whole ingest; distinct provider ids, 300 senders).

The load comes from separate client processes with keep-alive connections, so the client's GIL is not the
server's. Prints each rung's rate (mean and per round) and its ratio to the no-op, and checks that the
bench tables hold one row per request sent to them and that the real endpoint stored every message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sms_ingest import ROOT, add_load_arguments, free_port, load_round, server_env, start_server, stop_server

SENDERS = 300
TARGET = 0.5
WARMUP = 200
COMMIT_TABLE = "bench_floor_commit"  # rung 3's rows
RAW_TABLE = "bench_floor_raw"  # rung 4's rows
RUNGS = ("noop", "validate", "token", "commit", "raw-commit", "ingest")

Work = list[tuple[str, bytes, dict[str, str]]]


def bench_app() -> Any:
    """The production app plus the ladder's bench-only endpoints (what gunicorn serves in this benchmark)."""
    from flask import Response, current_app, jsonify
    from sqlalchemy import text

    from app import create_app
    from app.api.auth import public
    from app.api.channels import InboundBody, _bearer_channel
    from app.api.errors import ApiError
    from app.api.validation import validate
    from app.extensions import db
    from connectors.base import Identity, InvalidIdentity

    app = create_app()
    insert = text(f"INSERT INTO {COMMIT_TABLE} (body) VALUES (:body)")  # built once, as the app's queries are
    raw_insert = f"INSERT INTO {RAW_TABLE} (body) VALUES (?)"
    accepted = '{"accepted":true}'

    def check(body: InboundBody) -> None:
        """The real endpoint's checks after validation: text length and the sender's identity."""
        if len(body.text) > current_app.config["MAX_MESSAGE_CHARS"]:
            raise ApiError(413, "too_large", "text is too long")
        try:
            Identity.parse(body.identity.kind, body.identity.value, current_app.config["DEFAULT_PHONE_REGION"])
        except InvalidIdentity as exc:
            raise ApiError(422, "validation_failed", str(exc), {"identity.value": exc.reason}) from None

    @public
    def noop() -> Response:
        return Response(accepted, status=202, mimetype="application/json")

    @public
    @validate(body=InboundBody)
    def validated(channel_id: int, body: InboundBody) -> Any:
        check(body)
        return jsonify(accepted=True), 202

    @public
    @validate(body=InboundBody)
    def token(channel_id: int, body: InboundBody) -> Any:
        _bearer_channel(channel_id)
        check(body)
        return jsonify(accepted=True), 202

    @public
    @validate(body=InboundBody)
    def commit(channel_id: int, body: InboundBody) -> Any:
        _bearer_channel(channel_id)
        check(body)
        db.session.execute(insert, {"body": body.model_dump_json()})
        db.session.commit()
        return jsonify(accepted=True), 202

    @public
    @validate(body=InboundBody)
    def raw_commit(channel_id: int, body: InboundBody) -> Any:
        _bearer_channel(channel_id)
        check(body)
        # The token read began a session transaction, and the engine begins every one with BEGIN IMMEDIATE,
        # so it holds the write lock: end it, or the raw BEGIN IMMEDIATE below would wait on it for ever.
        db.session.rollback()
        assert db.engine is not None
        raw = db.engine.raw_connection()
        try:
            raw.dbapi_connection.acquire_write_lock(timeout=30)  # what the engine's "begin" hook does
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(raw_insert, (body.model_dump_json(),))
            cursor.close()
            raw.commit()  # SerializedConnection.commit: COMMIT, then release the write lock
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()  # back to the pool
        return jsonify(accepted=True), 202

    app.add_url_rule("/bench/floor/noop", "bench_floor_noop", noop, methods=["POST"])
    for name, view in (("validate", validated), ("token", token), ("commit", commit), ("raw-commit", raw_commit)):
        app.add_url_rule(f"/bench/floor/{name}/<int:channel_id>", f"bench_floor_{name}", view, methods=["POST"])
    return app


def prepare() -> None:
    """Create the schema, the bench tables and an api channel; print the channel's id and token as JSON.

    Runs in its own process (see ``_prepare_database``), so the driver never opens the database itself.
    """
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db
    from app.models import Base
    from app.services.channels import create_channel

    app = create_app({"EMBEDDED_WORKER": False, "EMBEDDED_SMTP": False})
    with app.app_context():
        Base.metadata.create_all(db.engine)
        for table in (COMMIT_TABLE, RAW_TABLE):
            db.session.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        db.session.commit()
        channel, token = create_channel("api", "Bench floor")
        print(json.dumps({"channel": channel.id, "token": token}))


def _prepare_database(env: dict[str, str]) -> tuple[int, str]:
    code = "from bench.ingest_floor import prepare; prepare()"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    created = json.loads(done.stdout.strip().splitlines()[-1])
    return int(created["channel"]), str(created["token"])


def _bodies(start: int, count: int) -> list[bytes]:
    """Inbound bodies as bench/ingest.py pushes them: distinct provider ids, SENDERS customers."""
    return [
        json.dumps(
            {
                "identity": {"kind": "email", "value": f"floor{n % SENDERS}@example.com"},
                "name": f"Bench Customer {n % SENDERS}",
                "text": f"Message {n}: where is my order #{10000 + n}?",
                "provider_id": f"floor-{n}",
            }
        ).encode()
        for n in range(start, start + count)
    ]


def _paths(channel_id: int) -> dict[str, str]:
    paths = {name: f"/bench/floor/{name}/{channel_id}" for name in RUNGS[1:5]}
    return {"noop": "/bench/floor/noop", **paths, "ingest": f"/api/v1/channels/{channel_id}/inbound"}


def _stored(database_url: str) -> dict[str, int]:
    """Rows in the two bench tables and api-channel messages, keyed by the rung that wrote them."""
    from sqlalchemy import func, select, text

    from app.extensions import make_engine
    from app.models import Message

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                "commit": int(conn.scalar(text(f"SELECT count(*) FROM {COMMIT_TABLE}")) or 0),
                "raw-commit": int(conn.scalar(text(f"SELECT count(*) FROM {RAW_TABLE}")) or 0),
                "ingest": int(conn.scalar(select(func.count(Message.id)).where(Message.channel == "api")) or 0),
            }
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_arguments(parser, 2000, "rung")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-floor-"))
    port = free_port()
    env = server_env(tmp, port)
    threads = max(1, args.concurrency // args.clients)
    channel_id, token = _prepare_database(env)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    paths = _paths(channel_id)
    rates: dict[str, list[float]] = {name: [] for name in RUNGS}
    server = start_server(env, port, tmp / "server.log", "bench.ingest_floor:bench_app()")
    try:
        warmup = _bodies(10**9, WARMUP)
        for name in RUNGS:
            load_round(port, [(paths[name], body, headers) for body in warmup], args.clients, threads)
        bodies = _bodies(0, args.requests * args.rounds)
        for r in range(args.rounds):
            chunk = bodies[r * args.requests : (r + 1) * args.requests]
            order = RUNGS if r % 2 == 0 else RUNGS[::-1]  # 0..5, then 5..0: drift falls on every rung alike
            for name in order:
                work = [(paths[name], body, headers) for body in chunk]
                rates[name].append(load_round(port, work, args.clients, threads))
        stored = _stored(env["DATABASE_URL"])
    finally:
        stop_server(server)

    means = {name: sum(values) / len(values) for name, values in rates.items()}
    print(f"server: gunicorn gthread, 1 process; database: sqlite; cpus: {os.cpu_count()}")
    print(
        f"load: {args.clients} client processes x {threads} keep-alive connections, "
        f"{args.requests} requests/rung/round, {args.rounds} rounds"
    )
    for number, name in enumerate(RUNGS):
        each = ", ".join(f"{rate:.1f}" for rate in rates[name])
        ratio = means[name] / means["noop"]
        print(f"{number} {name:<10}: {means[name]:8.1f} req/s  x{ratio:4.2f} of no-op   (rounds: {each})")
    print(f"target: ingest >= {TARGET} x no-op")
    expected = args.requests * args.rounds + WARMUP
    counts = ", ".join(f"{name} {count} of {expected}" for name, count in stored.items())
    print(f"stored: {counts}")
    shutil.rmtree(tmp, ignore_errors=True)
    wrong = {name: count for name, count in stored.items() if count != expected}
    if wrong:
        print(f"FAILED: expected {expected} rows each, found {wrong}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
