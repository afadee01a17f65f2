"""Load 1,000,000 conversations over 90 days with topics, then time GET /api/v1/reports/topics.

The data: ~11,000 conversations a day (weekends at half), a daily profile, six channels routed to three
teams, 25 agents, 8 topics with 30 subtopics (Zipf-like shares; 12 % untagged, 15 % with two topics), and
first-response/resolution times drawn per channel (some never answered, some still open). Rows go in with
the driver's bulk paths (executemany on SQLite, COPY on PostgreSQL), then the report statistics are built
once (``rebuild_all``, timed), then each report is requested through the whole Flask stack (routing, login
session, validation, JSON) with the test client, which leaves out only the network.

    .venv/bin/python bench/reports.py [--rows 1000000] [--days 90] [--backend sqlite|postgresql|both]
                                      [--requests 40] [--keep]
PostgreSQL: TEST_POSTGRES_URL (default postgresql+psycopg://root@127.0.0.1:5432/test) names the server; the
bench creates and drops its own database there.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.spikes import HOURLY_PROFILE as HOURLY  # noqa: E402 - the same day shape as the spike stream

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
TZ_NAME = "Europe/Warsaw"
# kind, name, share, team index (None = no team), first-response log-median seconds, sigma
CHANNELS = [
    ("email", "Support mail", 0.34, 0, np.log(2 * 3600), 1.0),
    ("email", "Sales mail", 0.10, 1, np.log(3 * 3600), 1.0),
    ("sms", "SMS", 0.14, 0, np.log(30 * 60), 1.1),
    ("voice", "Phone", 0.16, 0, np.log(25), 0.6),
    ("chat", "Website chat", 0.20, 1, np.log(60), 0.9),
    ("form", "Contact form", 0.06, 2, np.log(5 * 3600), 1.0),
]
TOPICS = {
    "Payment problem": ["Card declined", "Charged twice", "Refund status", "Invoice"],
    "Delivery": ["Late", "Damaged parcel", "Wrong address", "Lost parcel", "Pickup point"],
    "Returns": ["Return label", "Exchange", "Return status"],
    "Account": ["Password reset", "Change details", "Delete account"],
    "Product question": ["Availability", "Sizing", "Materials", "Care"],
    "Order change": ["Cancel order", "Add item", "Change size"],
    "Complaint": ["Quality", "Service", "Price"],
    "Other": ["Partnership", "Press", "Job application"],
}


def generate(rows: int, days: int, seed: int, end: dt.datetime) -> dict[str, Any]:
    """Return column arrays for ``rows`` conversations over the ``days`` before ``end``, time-ordered."""
    rng = np.random.default_rng(seed)
    start = end - dt.timedelta(days=days)
    day_weights = np.array([0.5 if (start + dt.timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)])
    day = rng.choice(days, size=rows, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=rows, p=HOURLY / HOURLY.sum())
    seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, size=rows)
    seconds.sort()
    created = np.datetime64(start.replace(tzinfo=None), "us") + seconds.astype("timedelta64[s]")

    shares = np.array([c[2] for c in CHANNELS])
    channel = rng.choice(len(CHANNELS), size=rows, p=shares / shares.sum())
    team = np.array([c[3] for c in CHANNELS])[channel]
    team = np.where(rng.random(rows) < 0.08, -1, team)  # some never reach a team
    assignee = np.where(rng.random(rows) < 0.05, -1, rng.integers(0, 25, size=rows))
    medians = np.array([c[4] for c in CHANNELS])[channel]
    sigmas = np.array([c[5] for c in CHANNELS])[channel]
    frt = np.exp(rng.normal(medians, sigmas))
    answered = rng.random(rows) > 0.08
    res = frt + np.exp(rng.normal(np.log(20 * 3600), 1.2, size=rows))
    age = (np.datetime64(end.replace(tzinfo=None), "us") - created).astype("timedelta64[s]").astype(np.float64)
    resolved = answered & (rng.random(rows) > 0.1) & (res < age)
    answered &= frt < age

    leaves = [(parent, child) for parent, children in TOPICS.items() for child in children]
    weights = 1 / np.arange(1, len(leaves) + 1) ** 0.9
    first_topic = rng.choice(len(leaves), size=rows, p=weights / weights.sum())
    tagged = rng.random(rows) > 0.12
    second = np.where(rng.random(rows) < 0.15, rng.choice(len(leaves), size=rows, p=weights / weights.sum()), -1)
    second = np.where(second == first_topic, -1, second)
    return {
        "created": created,
        "channel": channel,
        "team": team,
        "assignee": assignee,
        "frt": np.where(answered, frt, np.nan),
        "res": np.where(resolved, res, np.nan),
        "topic1": np.where(tagged, first_topic, -1),
        "topic2": np.where(tagged, second, -1),
        "customers": rng.integers(1, 50_001, size=rows),
        "leaves": leaves,
    }


def iso_sqlite(values: np.ndarray) -> list[str | None]:
    """SQLAlchemy's SQLite text format for naive UTC datetimes."""
    text = np.datetime_as_string(values, unit="us")
    return [None if t == "NaT" else t.replace("T", " ") for t in text]


def iso_pg(values: np.ndarray) -> list[str]:
    text = np.datetime_as_string(values, unit="us")
    return ["\\N" if t == "NaT" else t + "+00" for t in text]


def setup_schema(url: str, data: dict[str, Any]) -> dict[str, Any]:
    """Create the schema and the small tables; return their ids."""
    from app import create_app
    from app.extensions import db
    from app.models import Base, Channel, Customer, Team, Topic
    from app.services.users import create_user

    app = create_app(bench_config(url))
    with app.app_context():
        Base.metadata.create_all(db.engine)
        teams = [Team(name=name) for name in ("Support", "Sales", "Back office")]
        channels = [
            Channel(
                kind=kind, name=name, address=f"{kind}-{i}@bench.example.com" if kind in ("email", "chat") else None
            )
            for i, (kind, name, *_rest) in enumerate(CHANNELS)
        ]
        db.session.add_all(teams + channels)
        agents = [
            create_user(f"agent{i}@bench.example.com", f"Agent {i}", "bench-password", "agent") for i in range(25)
        ]
        create_user("boss@bench.example.com", "Supervisor", "bench-password", "supervisor")
        leaf_ids = []
        for parent_name, children in TOPICS.items():
            parent = Topic(name=parent_name)
            db.session.add(parent)
            db.session.flush()
            for child in children:
                topic = Topic(name=child, parent_id=parent.id)
                db.session.add(topic)
                db.session.flush()
                leaf_ids.append(topic.id)
        db.session.commit()
        ids = {
            "teams": [t.id for t in teams],
            "channels": [c.id for c in channels],
            "agents": [a.id for a in agents],
            "leaves": leaf_ids,
        }
        customers = int(data["customers"].max())
        db.session.execute(Customer.__table__.insert(), [{"id": i, "attributes": {}} for i in range(1, customers + 1)])
        db.session.commit()
    return ids


def conversation_rows(data: dict[str, Any], ids: dict[str, Any], dialect: str) -> list[tuple[Any, ...]]:
    fmt = iso_sqlite if dialect == "sqlite" else iso_pg
    created = data["created"]
    created_text = fmt(created)
    frt_text = fmt(
        created + np.where(np.isnan(data["frt"]), np.timedelta64("NaT"), (data["frt"] * 1e6).astype("timedelta64[us]"))
    )
    res_text = fmt(
        created + np.where(np.isnan(data["res"]), np.timedelta64("NaT"), (data["res"] * 1e6).astype("timedelta64[us]"))
    )
    channels = np.array(ids["channels"])[data["channel"]]
    kinds = [CHANNELS[c][0] for c in range(len(CHANNELS))]
    teams = ids["teams"]
    agents = ids["agents"]
    null = None if dialect == "sqlite" else "\\N"
    false = 0 if dialect == "sqlite" else "f"
    rows = []
    for i in range(len(created)):
        resolved = res_text[i] not in (None, "\\N")
        team = int(data["team"][i])
        agent = int(data["assignee"][i])
        kind = kinds[int(data["channel"][i])]
        rows.append(
            (
                i + 1,
                i + 1,
                int(data["customers"][i]),
                "resolved" if resolved else "open",
                agents[agent] if agent >= 0 else null,
                teams[team] if team >= 0 else null,
                int(channels[i]),
                f"Conversation {i + 1}",
                kind,
                kind,
                false,
                created_text[i],
                frt_text[i],
                res_text[i],
                created_text[i],
                res_text[i] if resolved else created_text[i],
            )
        )
    return rows


def tag_rows(data: dict[str, Any], ids: dict[str, Any], dialect: str) -> list[tuple[Any, ...]]:
    fmt = iso_sqlite if dialect == "sqlite" else iso_pg
    # Tags are added at wrap-up: at resolution, else a few minutes after the first response or creation.
    created = data["created"]
    at = created + np.where(
        np.isnan(data["res"]),
        np.timedelta64(600, "s"),
        (np.nan_to_num(data["res"]) * 1e6).astype("timedelta64[us]"),
    )
    at_text = fmt(at)
    leaves = ids["leaves"]
    rows = []
    for column in ("topic1", "topic2"):
        topics = data[column]
        for i in np.nonzero(topics >= 0)[0]:
            rows.append((int(i) + 1, leaves[int(topics[i])], at_text[i]))
    return rows


COLUMNS = (
    "id, number, customer_id, status, assignee_id, team_id, channel_id, subject, origin_channel, last_channel, "
    "call_back, created_at, first_response_at, resolved_at, last_message_at, last_activity_at"
)


def load_sqlite(url: str, conversations: list[tuple[Any, ...]], tags: list[tuple[Any, ...]]) -> None:
    import sqlite3

    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" * 16)
    with conn:
        conn.executemany(f"INSERT INTO conversations ({COLUMNS}) VALUES ({marks})", conversations)
        conn.executemany(
            "INSERT INTO conversation_topics (conversation_id, topic_id, created_at) VALUES (?, ?, ?)", tags
        )
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(url: str, conversations: list[tuple[Any, ...]], tags: list[tuple[Any, ...]]) -> None:
    import psycopg

    def copy(cursor: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as target:
            buffer = io.StringIO()
            for n, row in enumerate(rows, 1):
                buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
                buffer.write("\n")
                if n % 100_000 == 0:
                    target.write(buffer.getvalue())
                    buffer = io.StringIO()
            target.write(buffer.getvalue())

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cursor:
            copy(cursor, "conversations", COLUMNS, conversations)
            copy(cursor, "conversation_topics", "conversation_id, topic_id, created_at", tags)
            cursor.execute("SELECT setval('conversations_id_seq', (SELECT max(id) FROM conversations))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


INSTANCE_DIR = tempfile.mkdtemp(prefix="sb-bench-instance-")
atexit.register(shutil.rmtree, INSTANCE_DIR, ignore_errors=True)


def bench_config(url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "INSTANCE_DIR": INSTANCE_DIR,
        "EMBEDDED_WORKER": False,
        "EMBEDDED_SMTP": False,
        "RATELIMIT_ENABLED": False,
        "ORG_TIMEZONE": TZ_NAME,
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def measure(url: str, end: dt.datetime, days: int, requests: int) -> None:
    from app import create_app
    from app.services.reports import rebuild_all, refresh_stats

    app = create_app(bench_config(url))
    with app.app_context():
        t = time.perf_counter()
        result = rebuild_all(end)
        print(f"  statistics built from scratch: {time.perf_counter() - t:.1f} s ({result.days} days)")
        from app.extensions import db
        from app.models import ReportCell, ReportHourly

        print(
            f"  aggregate rows: report_cells {db.session.query(ReportCell).count():,}, "
            f"report_hourly {db.session.query(ReportHourly).count():,}"
        )
        t = time.perf_counter()
        refresh_stats(end)
        print(f"  routine refresh (today + yesterday + changed days): {1000 * (time.perf_counter() - t):.0f} ms")
        db.session.remove()

    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": "boss@bench.example.com", "password": "bench-password"})
    assert login.status_code == 200, login.json
    last = (end - dt.timedelta(seconds=1)).date()
    first = last - dt.timedelta(days=days - 1)
    to = (last + dt.timedelta(days=1)).isoformat()
    cases = [
        (f"{days}-day daily report", f"from={first}&to={to}&interval=day"),
        (f"{days}-day daily, channel=email", f"from={first}&to={to}&interval=day&channel=email"),
        (f"{days}-day daily, one team", f"from={first}&to={to}&interval=day&team=1"),
        (f"{days}-day weekly report", f"from={first}&to={to}&interval=week"),
        ("7-day hourly report", f"from={last - dt.timedelta(days=6)}&to={to}&interval=hour"),
        (f"{days}-day daily as CSV", f"from={first}&to={to}&interval=day&format=csv"),
    ]
    print(f"  load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    print(f"  {'request':<34} {'p50':>8} {'p95':>8} {'max':>8}  {'cpu p50':>8} {'cpu p95':>8}   response")
    gc.collect()
    for label, query in cases:
        time_requests(client, label, query, requests)
    # CPython's full collections walk every long-lived object (~140,000 after start-up); freezing them once
    # after start-up (gc.freeze(), e.g. in gunicorn's post_fork) takes those pauses out of request times.
    gc.freeze()
    for label, query in cases[:2]:
        time_requests(client, label + " +freeze", query, requests)
    gc.unfreeze()
    print(f"  load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("  (wall: what a client waits; cpu: this process's CPU, i.e. Flask + SQLite, not the PostgreSQL server)")
    data = client.get(f"/api/v1/reports/topics?from={first}&to={to}&interval=day").json
    print(
        f"  check: {data['totals']['total']:,} conversations in the report, {len(data['topics'])} topic rows, "
        f"{len(data['buckets'])} buckets"
    )


def time_requests(client: Any, label: str, query: str, requests: int) -> None:
    """Request one report ``requests`` times (after 3 warm-ups) and print wall and CPU percentiles."""
    timings, cpu = [], []
    size = 0
    for i in range(requests + 3):
        t, c = time.perf_counter(), time.process_time()
        response = client.get(f"/api/v1/reports/topics?{query}")
        elapsed, used = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        size = len(response.get_data())
        if i >= 3:  # the first requests warm caches and connections
            timings.append(elapsed)
            cpu.append(used)
    print(
        f"  {label:<34} {statistics.median(timings):>6.1f}ms {percentile(timings, 95):>6.1f}ms "
        f"{max(timings):>6.1f}ms  {statistics.median(cpu):>6.1f}ms {percentile(cpu, 95):>6.1f}ms   "
        f"{size / 1024:.0f} KiB"
    )


def run(backend: str, args: argparse.Namespace) -> None:
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    print(f"\n== {backend}: {args.rows:,} conversations over {args.days} days ==")
    t = time.perf_counter()
    data = generate(args.rows, args.days, seed=1, end=end)
    database = None
    if backend == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="sb-bench-")) / "bench.db"
        url = f"sqlite:///{path}"
    else:
        from sqlalchemy import create_engine, text

        database = f"sb_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    try:
        ids = setup_schema(url, data)
        conversations = conversation_rows(data, ids, backend)
        tags = tag_rows(data, ids, backend)
        print(
            f"  generated {len(conversations):,} conversations, {len(tags):,} tags in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        (load_sqlite if backend == "sqlite" else load_postgres)(url, conversations, tags)
        print(f"  bulk load: {time.perf_counter() - t:.1f} s")
        del conversations, tags, data
        gc.collect()
        measure(url, end, args.days, args.requests)
    finally:
        if database is not None and not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
        elif backend == "sqlite" and not args.keep:
            shutil.rmtree(path.parent, ignore_errors=True)
        else:
            print(f"  kept: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per report")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run(backend, args)


if __name__ == "__main__":
    main()
