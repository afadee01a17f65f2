"""Benchmark: signed Twilio SMS webhooks into a running server, against a no-op endpoint of the same server.

    .venv/bin/python bench/sms_ingest.py [--requests 3000] [--concurrency 8] [--clients 2] [--database-url URL]

It starts one gunicorn server (the production gunicorn.conf.py: gthread, embedded outbox worker) on a free
port with a fresh database (SQLite unless --database-url names a PostgreSQL database), then alternates rounds
of POSTs to a no-op endpoint (``/bench/noop``, added to the app by this script, answering ``<Response/>``
without reading anything) and to ``/webhooks/twilio/sms``: signature check, parsing, customer resolution,
routing, idempotent insert, commit. Every SMS carries a real X-Twilio-Signature from the twilio library and
a unique MessageSid, from a pool of 500 senders (so both new and returning customers). The load comes from
separate client processes with keep-alive connections, so the client's GIL is not the server's.

Prints both rates and sms/no-op (target ≥ 0.5), and checks that every SMS was stored exactly once.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
SHOP_NUMBER = "+48221234567"
SENDERS = 500
TARGET = 0.5


def bench_app() -> Any:
    """The production app plus a no-op webhook-shaped endpoint (what gunicorn serves in this benchmark)."""
    from flask import Response

    from app import create_app
    from app.api.auth import public

    app = create_app()

    @public
    def noop() -> Response:
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response />', mimetype="application/xml")

    app.add_url_rule("/bench/noop", "bench_noop", noop, methods=["POST"])
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_load_arguments(parser: argparse.ArgumentParser, requests: int, per: str) -> None:
    """The load options every HTTP benchmark here takes: requests per round, rounds, connections, clients."""
    parser.add_argument("--requests", type=int, default=requests, help=f"requests per {per} per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, to even out drift")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in flight in total")
    parser.add_argument("--clients", type=int, default=2, help="client processes sharing the connections")


def server_env(tmp: Path, port: int, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a benchmark server on ``port``, with its instance and database under ``tmp``."""
    return {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.db'}",
        "SWITCHBOARD_INSTANCE": str(tmp / "instance"),
        "SECRET_KEY": "bench",
        "EMBEDDED_SMTP": "0",  # the SMTP listener's fixed port is not what is measured
        "RATELIMIT_ENABLED": "0",
        "ADMIN_PASSWORD": "bench-admin-password",
        **extra,
    }


def _prepare_database(env: dict[str, str]) -> None:
    """Create the schema and the SMS channel the webhooks are addressed to."""
    code = (
        "from app import create_app\n"
        "from app.extensions import db\n"
        "from app.models import Base\n"
        "from app.services.channels import create_channel\n"
        "app = create_app({'EMBEDDED_WORKER': False, 'EMBEDDED_SMTP': False})\n"
        "with app.app_context():\n"
        "    Base.metadata.create_all(db.engine)\n"
        f"    create_channel('sms', 'Bench SMS', address={SHOP_NUMBER!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def start_server(
    env: dict[str, str], port: int, log: Path, app: str = "bench.sms_ingest:bench_app()"
) -> subprocess.Popen[bytes]:
    """Serve ``app`` (a gunicorn app spec) with the production gunicorn.conf.py; return once it answers."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py", app],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started with ``start_server`` (killing it if it does not stop within 15 s)."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def _sms_requests(url: str, start: int, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """Signed SMS webhook requests, as Twilio would send them (signature from the twilio library)."""
    from connectors.twilio.signature import compute_signature

    target = f"{url}/webhooks/twilio/sms"
    requests = []
    for n in range(start, start + count):
        params = {
            "MessageSid": f"SM{n:032x}",
            "SmsSid": f"SM{n:032x}",
            "SmsMessageSid": f"SM{n:032x}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+4860{n % SENDERS:07d}",
            "To": SHOP_NUMBER,
            "Body": f"Dzień dobry, gdzie jest moja paczka nr {n}? Proszę o informację.",
            "NumMedia": "0",
            "NumSegments": "1",
            "FromCountry": "PL",
            "ToCountry": "PL",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute_signature(AUTH_TOKEN, target, params),
        }
        requests.append(("/webhooks/twilio/sms", urlencode(params).encode(), headers))
    return requests


def _noop_requests(sms: list[tuple[str, bytes, dict[str, str]]]) -> list[tuple[str, bytes, dict[str, str]]]:
    return [("/bench/noop", body, headers) for _path, body, headers in sms]


def _client(port: int, work: list[tuple[str, bytes, dict[str, str]]], threads: int, start: Any, out: Any) -> None:
    """One client process: ``threads`` keep-alive connections working through ``work``; report non-2xx answers."""
    lock = threading.Lock()
    index = iter(range(len(work)))
    failures: list[str] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                break
            path, body, headers = work[i]
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if not 200 <= response.status < 300:
                failures.append(f"{path}: HTTP {response.status} {payload[:200]!r}")
        conn.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    start.wait()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(failures)


def load_round(port: int, work: list[tuple[str, bytes, dict[str, str]]], clients: int, threads: int) -> float:
    """Send ``work`` from ``clients`` processes; return requests per second (wall clock, all processes)."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    out = context.Queue()
    slices = [work[i::clients] for i in range(clients)]
    processes = [context.Process(target=_client, args=(port, part, threads, start, out)) for part in slices]
    for process in processes:
        process.start()
    time.sleep(0.3)  # every client is connected and waiting
    began = time.perf_counter()
    start.set()
    failures = [item for _ in processes for item in out.get()]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[:3]}")
    return len(work) / elapsed


def _stored_sms(database_url: str) -> int:
    from sqlalchemy import func, select

    from app.extensions import make_engine
    from app.models import Message

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count(Message.id)).where(Message.channel == "sms")) or 0)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_arguments(parser, 3000, "endpoint")
    parser.add_argument("--database-url", default=None, help="an empty database to use (default: a temporary SQLite)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(
        tmp,
        port,
        args.database_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        DEFAULT_PHONE_REGION="PL",
    )
    threads = max(1, args.concurrency // args.clients)
    _prepare_database(env)
    server = start_server(env, port, tmp / "server.log")
    try:
        total = args.requests * args.rounds
        warmup = _sms_requests(url, 10**9, 200)
        load_round(port, _noop_requests(warmup), args.clients, threads)
        load_round(port, warmup, args.clients, threads)
        sms_all = _sms_requests(url, 0, total)
        noop_rates, sms_rates = [], []
        for r in range(args.rounds):
            chunk = sms_all[r * args.requests : (r + 1) * args.requests]
            noop_rates.append(load_round(port, _noop_requests(chunk), args.clients, threads))
            sms_rates.append(load_round(port, chunk, args.clients, threads))
        stored = _stored_sms(env["DATABASE_URL"])
    finally:
        stop_server(server)
    backend = (args.database_url or "sqlite").split(":", 1)[0]
    noop = sum(noop_rates) / len(noop_rates)
    sms = sum(sms_rates) / len(sms_rates)
    print(f"server: gunicorn gthread, 1 process; database: {backend}; cpus: {os.cpu_count()}")
    print(f"load: {args.clients} client processes x {threads} keep-alive connections, {args.requests} requests/round")
    print(f"no-op endpoint : {noop:8.1f} req/s   (rounds: {', '.join(f'{r:.1f}' for r in noop_rates)})")
    print(f"SMS webhook    : {sms:8.1f} req/s   (rounds: {', '.join(f'{r:.1f}' for r in sms_rates)})")
    print(f"ratio sms/no-op: {sms / noop:8.2f}      (target >= {TARGET})")
    expected = total + len(warmup)
    print(f"stored SMS     : {stored} of {expected} sent (each exactly once: {stored == expected})")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if stored == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
