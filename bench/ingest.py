"""Ingest throughput against a no-op baseline on the same server: how close is ingest to the HTTP ceiling?

Starts the real deployment shape (gunicorn gthread, SQLite, embedded worker) on a free port — or targets a
running server with --url — then, over C keep-alive connections:
  1. GET /api/v1/ping (public, no database): the server's HTTP ceiling on this machine, in requests/s;
  2. POST /api/v1/channels/ID/inbound with N distinct messages from a pool of senders (new and returning
     customers, so both branches of identity resolution and routing run): messages/s.
It prints both rates, latency percentiles, and the ratio (target ≥ 0.5 on SQLite).

--breakdown also measures, in this process and in CPU time per request (Flask's test client, SQLite), where
an inbound request's time goes: the no-op endpoint, the inbound endpoint with ingest() replaced by a stored
result (token check, validation, identity parsing, serialising the answer), and the whole inbound endpoint.

    .venv/bin/python bench/ingest.py [-n 3000] [-c 8] [--senders 300] [--url URL --channel ID --token TOKEN]
    .venv/bin/python bench/ingest.py --breakdown [-n 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_load(
    url: str, total: int, connections: int, request: Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]
) -> tuple[float, list[float]]:
    """Send ``total`` requests over ``connections`` keep-alive connections; return (requests/s, latencies)."""
    parts = urlsplit(url)
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path, body, headers = request(index)
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - started)
            if response.status >= 300:
                errors.append(f"{response.status} {payload[:200]!r}")
                break
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"requests failed: {errors[:3]}")
    return len(latencies) / elapsed, latencies


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def create_channel(url: str, email: str, password: str) -> tuple[int, str]:
    import requests

    http = requests.Session()
    login = http.post(f"{url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)
    login.raise_for_status()
    http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    created = http.post(f"{url}/api/v1/channels", json={"kind": "api", "name": f"bench {uuid.uuid4().hex[:6]}"})
    created.raise_for_status()
    return int(created.json()["id"]), str(created.json()["token"])


def breakdown(requests: int, senders: int) -> None:
    """Print CPU ms per request for ping, the inbound endpoint without ingest, and the whole inbound endpoint."""
    import os

    tmp = Path(tempfile.mkdtemp(prefix="switchboard-breakdown-"))
    os.environ["SWITCHBOARD_INSTANCE"] = str(tmp)
    from app import create_app
    from app.extensions import db
    from app.models import Base, Conversation
    from app.services.ingest import IngestResult

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'breakdown.db'}",
            "ATTACHMENTS_DIR": str(tmp / "files"),
            "EMBEDDED_WORKER": False,
            "EMBEDDED_SMTP": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        from app.services.channels import create_channel

        Base.metadata.create_all(db.engine)
        channel, token = create_channel("api", "breakdown")
        channel_id = channel.id
        db.session.remove()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def push(index: int) -> None:
        body = {
            "identity": {"kind": "email", "value": f"bench{index % senders}@example.com"},
            "name": f"Bench Customer {index % senders}",
            "text": f"Message {index}: where is my order #{10000 + index}?",
            "provider_id": f"breakdown-{index}",
        }
        response = client.post(f"/api/v1/channels/{channel_id}/inbound", json=body, headers=headers)
        assert response.status_code in (200, 201), response.get_data(as_text=True)

    def cpu_ms(label: str, action: Callable[[int], object], offset: int) -> float:
        for index in range(offset, offset + 200):  # warm up
            action(index)
        started = time.process_time()
        for index in range(offset + 200, offset + 200 + requests):
            action(index)
        value = (time.process_time() - started) / requests * 1000
        print(f"{label:<44} {value:6.3f} ms CPU per request")
        return value

    ping = cpu_ms("no-op GET /api/v1/ping", lambda _index: client.get("/api/v1/ping"), 0)
    full = cpu_ms("POST .../inbound (whole ingest)", push, 10**6)
    with app.app_context():  # a stored result to answer with, so only the endpoint's own work is left
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        from app.models import Message

        message = db.session.scalars(
            select(Message).options(selectinload(Message.attachments)).order_by(Message.id.desc()).limit(1)
        ).one()
        conversation = db.session.get_one(Conversation, message.conversation_id)
        sample = IngestResult(message, conversation, conversation.customer, created=True)
        db.session.expunge_all()
    import app.api.channels as channels_api

    real_ingest = channels_api.ingest
    channels_api.ingest = lambda _inbound, _channel: sample  # type: ignore[assignment]
    try:
        shell = cpu_ms("POST .../inbound with ingest() skipped", push, 3 * 10**6)
    finally:
        channels_api.ingest = real_ingest
    print(
        f"ingest() itself: {full - shell:.3f} ms; the endpoint around it: {shell - ping:.3f} ms over the no-op. "
        f"In-process CPU ratios (no HTTP): whole {ping / full:.2f}, without ingest {ping / shell:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--messages", type=int, default=3000, help="inbound messages to push")
    parser.add_argument("-c", "--connections", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--senders", type=int, default=300, help="distinct customers the messages come from")
    parser.add_argument("--pings", type=int, default=0, help="no-op requests (default: twice the messages)")
    parser.add_argument("--url", help="target a running server instead of starting one")
    parser.add_argument("--channel", type=int, help="api channel id on --url")
    parser.add_argument("--token", help="that channel's token")
    parser.add_argument("--admin-email", help="with --url and no --token: log in and create an api channel")
    parser.add_argument("--admin-password")
    parser.add_argument("--breakdown", action="store_true", help="in-process CPU per request: where time goes")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.messages if args.messages != 3000 else 2000, args.senders)
        return
    pings = args.pings or 2 * args.messages

    server = None
    url = args.url
    if url is None:
        from tests.conftest import LiveServer

        tmp = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
        server = LiveServer(tmp).start()
        url = server.url
        print(f"started gunicorn (gthread) on {url}, SQLite at {server.database_url}")
    try:
        if args.token and args.channel:
            channel_id, token = args.channel, args.token
        else:
            email = args.admin_email or (server.admin_email if server else None)
            password = args.admin_password or (server.admin_password if server else None)
            if not email or not password:
                raise SystemExit("with --url, pass --channel and --token, or --admin-email and --admin-password")
            channel_id, token = create_channel(url, email, password)

        def ping(_index: int) -> tuple[str, str, bytes | None, dict[str, str]]:
            return "GET", "/api/v1/ping", None, {}

        run_id = uuid.uuid4().hex[:8]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def push(index: int) -> tuple[str, str, bytes | None, dict[str, str]]:
            body = {
                "identity": {"kind": "email", "value": f"bench{index % args.senders}.{run_id}@example.com"},
                "name": f"Bench Customer {index % args.senders}",
                "text": f"Message {index}: where is my order #{10000 + index}?",
                "provider_id": f"bench-{run_id}-{index}",
            }
            return "POST", f"/api/v1/channels/{channel_id}/inbound", json.dumps(body).encode(), headers

        run_load(url, 200, args.connections, ping)  # warm up connections and code paths
        ping_rate, ping_latencies = run_load(url, pings, args.connections, ping)
        ingest_rate, ingest_latencies = run_load(url, args.messages, args.connections, push)
        print(f"no-op  GET  /api/v1/ping     {ping_rate:8.0f} requests/s  ({percentiles(ping_latencies)})")
        print(f"ingest POST .../inbound      {ingest_rate:8.0f} messages/s  ({percentiles(ingest_latencies)})")
        print(
            f"ratio ingest / no-op: {ingest_rate / ping_rate:.2f}  "
            f"({args.messages} messages from {args.senders} senders, {args.connections} connections)"
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
