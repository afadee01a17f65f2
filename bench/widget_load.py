"""Hold K concurrent chat-widget connections on ONE server process and measure message round trips.

Starts the real server (gunicorn with gunicorn.conf.py, the embedded default: one process, threads) on a fresh
database, creates a chat channel, then K visitors each start a session over HTTP (as the iframe does), open a
Socket.IO websocket on /widget with their visitor token, and send chat messages at random intervals
(`--interval` seconds on average, chat-like). The round trip is the time from emitting `message` to receiving
its acknowledgement, which the server sends only after the message is committed (ingest: customer, routing,
store, commit, events). Prints connections held, messages acknowledged, round-trip p50/p95/p99/max and the
server process's resident memory and thread count.

The visitors are a minimal Socket.IO client over aiohttp websockets in one asyncio loop (a thread per client
would measure the client, not the server). All visitors come from 127.0.0.1, so rate limits are switched off.

    .venv/bin/python bench/widget_load.py [--clients 1000] [--duration 60] [--interval 30]
        [--database-url postgresql://root@127.0.0.1/test] [--threads 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ORIGIN = "http://bench-shop.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The real server in its own process group, on a fresh database."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="widget-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pg_admin = None
        database_url = args.database_url or f"sqlite:///{self.tmp / 'bench.db'}"
        if args.database_url:
            database_url = self._fresh_postgres(args.database_url)
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret",
            "SWITCHBOARD_INSTANCE": str(self.tmp / "instance"),
            "PUBLIC_URL": self.url,
            "EMBEDDED_SMTP": "0",
            "RATELIMIT_ENABLED": "0",  # every visitor here comes from 127.0.0.1
            "WEB_THREADS": str(args.threads),
            "WEB_CONNECTIONS": str(max(2000, args.clients * 2)),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def _fresh_postgres(self, url: str) -> str:
        from sqlalchemy import create_engine, text

        name = f"sb_bench_{uuid.uuid4().hex[:10]}"
        admin_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.pg_admin = (create_engine(admin_url, isolation_level="AUTOCOMMIT"), name)
        with self.pg_admin[0].connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return url.rsplit("/", 1)[0] + f"/{name}"

    def start(self) -> None:
        self.log = open(self.tmp / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(f"server did not start:\n{(self.tmp / 'server.log').read_text()[-3000:]}")

    def worker_pid(self) -> int:
        """The gunicorn worker (the one process that serves every connection)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0]) if children else self.process.pid

    def memory(self) -> tuple[float, int]:
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"].strip())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.pg_admin is not None:
            from sqlalchemy import text

            engine, name = self.pg_admin
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def prepare(self) -> int:
        """Create the schema (from the models, like the tests) and the chat channel; return its id."""
        os.environ["SWITCHBOARD_INSTANCE"] = self.env["SWITCHBOARD_INSTANCE"]
        sys.path.insert(0, str(ROOT))
        from app import create_app
        from app.extensions import db
        from app.models import Base
        from app.services.channels import create_channel

        app = create_app(
            {
                "DATABASE_URL": self.env["DATABASE_URL"],
                "SECRET_KEY": self.env["SECRET_KEY"],
                "EMBEDDED_WORKER": False,
                "EMBEDDED_SMTP": False,
            }
        )
        with app.app_context():
            Base.metadata.create_all(db.engine)
            channel, _ = create_channel("chat", "Bench shop", settings={"allowed_origins": [ORIGIN]})
            channel_id = channel.id
            db.session.remove()
        assert db.engine is not None
        db.engine.dispose()
        return int(channel_id)


@dataclass
class Stats:
    rtts: list[float] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    dropped: int = 0


class Visitor:
    """A minimal Socket.IO v5 client over one websocket (Engine.IO v4 framing), like the widget's."""

    def __init__(self, number: int, url: str, channel_id: int, http: aiohttp.ClientSession, stats: Stats) -> None:
        self.number = number
        self.url = url
        self.channel_id = channel_id
        self.http = http
        self.stats = stats
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: dict[int, tuple[float, asyncio.Future[object]]] = {}
        self.next_ack = 0
        self.connected = asyncio.Event()
        self.closed = False

    async def start(self) -> None:
        async with self.http.post(
            f"{self.url}/api/v1/widget/session",
            json={"channel_id": self.channel_id, "host": ORIGIN},
            headers={"Origin": ORIGIN},
        ) as response:
            response.raise_for_status()
            token = (await response.json())["token"]
        ws_url = self.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.http.ws_connect(ws_url, headers={"Origin": ORIGIN}, heartbeat=None, max_msg_size=0)
        opening = await self.ws.receive_str()
        assert opening.startswith("0"), opening
        auth = {"channel_id": self.channel_id, "token": token}
        await self.ws.send_str("40/widget," + json.dumps(auth))
        asyncio.get_running_loop().create_task(self.read())
        await asyncio.wait_for(self.connected.wait(), 30)

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            data = frame.data
            if data == "2":  # Engine.IO ping: answer or the server drops us
                await self.ws.send_str("3")
            elif data.startswith("40/widget,"):
                self.connected.set()
            elif data.startswith("44/widget,"):
                self.stats.refused += 1
                self.stats.errors.append(data[:200])
                self.connected.set()
            elif data.startswith("43/widget,"):
                body = data[len("43/widget,") :]
                digits = len(body) - len(body.lstrip("0123456789"))
                ack_id = int(body[:digits])
                entry = self.pending.pop(ack_id, None)
                if entry is not None:
                    entry[1].set_result(json.loads(body[digits:]))
        if not self.closed:
            self.stats.dropped += 1

    async def send(self, text: str) -> None:
        assert self.ws is not None
        self.next_ack += 1
        ack_id = self.next_ack
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        payload = {"client_id": uuid.uuid4().hex, "text": text}
        started = time.perf_counter()
        self.pending[ack_id] = (started, future)
        await self.ws.send_str(f"42/widget,{ack_id}" + json.dumps(["message", payload]))
        self.stats.sent += 1
        try:
            answer = await asyncio.wait_for(future, 30)
        except TimeoutError:
            self.stats.errors.append("ack timeout")
            return
        elapsed = (time.perf_counter() - started) * 1000
        ack = answer[0] if isinstance(answer, list) and answer else {}
        if isinstance(ack, dict) and ack.get("ok"):
            self.stats.acked += 1
            self.stats.rtts.append(elapsed)
        else:
            self.stats.errors.append(str(ack)[:200])

    async def chat(self, until: float, interval: float) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # spread the first messages
        n = 0
        while time.monotonic() < until:
            n += 1
            await self.send(f"Visitor {self.number}: question {n} about my order")
            await asyncio.sleep(random.uniform(interval * 0.5, interval * 1.5))

    async def close(self) -> None:
        self.closed = True
        if self.ws is not None:
            await self.ws.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, server: Server, channel_id: int) -> None:
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        visitors = [Visitor(n, server.url, channel_id, http, stats) for n in range(args.clients)]
        gate = asyncio.Semaphore(args.ramp)

        async def open_one(visitor: Visitor) -> None:
            async with gate:
                try:
                    # A server out of threads never answers: count the visitor as not held, do not hang.
                    await asyncio.wait_for(visitor.start(), 30)
                except Exception as exc:  # counted and reported
                    stats.errors.append(f"connect: {type(exc).__name__}: {exc}"[:200])

        started = time.monotonic()
        await asyncio.gather(*(open_one(v) for v in visitors))
        held = [v for v in visitors if v.connected.is_set() and v.ws is not None and not v.ws.closed]
        print(
            f"connected {len(held)}/{args.clients} visitors in {time.monotonic() - started:.1f}s "
            f"(refused {stats.refused})"
        )
        rss, threads = server.memory()
        print(f"server after connecting: RSS {rss:.0f} MB, {threads} threads")

        until = time.monotonic() + args.duration
        await asyncio.gather(*(v.chat(until, args.interval) for v in held))
        still = sum(1 for v in held if not v.ws.closed)  # type: ignore[union-attr]
        rss, threads = server.memory()
        for visitor in visitors:
            await visitor.close()

    rtts = stats.rtts
    print()
    print(f"connections held to the end: {still}/{args.clients} (dropped {stats.dropped})")
    print(
        f"messages: {stats.sent} sent, {stats.acked} acknowledged after commit "
        f"({stats.acked / args.duration:.0f}/s), {len(stats.errors)} errors"
    )
    print(
        f"round trip (emit → ack after commit): p50 {percentile(rtts, 50):.1f} ms, "
        f"p95 {percentile(rtts, 95):.1f} ms, p99 {percentile(rtts, 99):.1f} ms, max {max(rtts or [0]):.1f} ms, "
        f"mean {statistics.fmean(rtts) if rtts else float('nan'):.1f} ms"
    )
    print(f"server process: RSS {rss:.0f} MB, {threads} threads")
    if stats.errors:
        print("first errors:", *stats.errors[:5], sep="\n  ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="concurrent widget connections")
    parser.add_argument("--duration", type=float, default=60, help="seconds of chatting after all connected")
    parser.add_argument("--interval", type=float, default=30, help="mean seconds between one visitor's messages")
    parser.add_argument("--ramp", type=int, default=50, help="visitors connecting at once")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="gunicorn threads (default: the 1,200 of gunicorn.conf.py, or clients + 200 above that)",
    )
    parser.add_argument("--database-url", default=None, help="postgresql://… (a fresh database is made in it)")
    args = parser.parse_args()
    args.threads = args.threads or max(1200, args.clients + 200)
    # A SIGTERM (e.g. from `timeout`) still stops the server: it runs in its own process group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args)
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"widget load: {args.clients} visitors, one message every ~{args.interval:.0f}s each, {args.duration:.0f}s, "
        f"gunicorn gthread (1 process, {args.threads} threads, Flask-SocketIO threading mode), {db_kind}"
    )
    try:
        channel_id = server.prepare()
        server.start()
        asyncio.run(run(args, server, channel_id))
    except BaseException:
        log = server.tmp / "server.log"
        if log.exists():
            print(log.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        server.stop()


if __name__ == "__main__":
    main()
