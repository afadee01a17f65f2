"""Benchmark: the inbox, conversation and timeline endpoints on a large database.

Seeds N conversations (default 10,000) with a few messages each, some topics and assignments, then times,
in-process through the Flask test client:
  * the inbox's first page, a page deep in the list (by cursor), filtered pages (assignee, status, topic,
    channel) and a text search;
  * a conversation view (detail + latest messages) and a customer timeline.

Run: .venv/bin/python bench/api_inbox.py [--conversations 10000] [--db sqlite|postgresql]
Prints figures; asserts nothing (tests never time things).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

PG_ADMIN_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
TEXTS = [
    "Where is my parcel? It should have arrived yesterday.",
    "I was charged twice for the same order, please refund one.",
    "Can I still change the delivery address for order 4411?",
    "The lamp arrived with a cracked shade.",
]


def seed(conversations: int, messages_each: int) -> None:
    from app.extensions import db
    from app.models import Conversation, ConversationTopic, Customer, CustomerIdentity, Message, Topic

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    session = db.session
    topics = [Topic(name=name) for name in ("Delivery", "Payment", "Returns", "Account")]
    session.add_all(topics)
    session.commit()
    batch = 1000
    for offset in range(0, conversations, batch):
        ids = range(offset + 1, min(offset + batch, conversations) + 1)
        session.execute(insert(Customer), [{"id": i, "name": f"Customer {i}", "attributes": {}} for i in ids])
        session.execute(
            insert(CustomerIdentity),
            [{"customer_id": i, "kind": "email", "value": f"c{i}@example.com", "source": "email"} for i in ids],
        )
        session.execute(
            insert(Conversation),
            [
                {
                    "id": i,
                    "number": i,
                    "customer_id": i,
                    "status": ("open", "pending", "resolved")[i % 3],
                    "assignee_id": None,
                    "subject": f"Order {i}",
                    "origin_channel": "email",
                    "last_channel": "email",
                    "created_at": start + dt.timedelta(minutes=i),
                    "last_activity_at": start + dt.timedelta(minutes=i),
                }
                for i in ids
            ],
        )
        session.execute(
            insert(Message),
            [
                {
                    "conversation_id": i,
                    "customer_id": i,
                    "channel": "email",
                    "direction": "in" if n % 2 == 0 else "out",
                    "kind": "message",
                    "text": TEXTS[(i + n) % len(TEXTS)],
                    "delivery_status": "received",
                    "meta": {},
                    "created_at": start + dt.timedelta(minutes=i, seconds=n),
                }
                for i in ids
                for n in range(messages_each)
            ],
        )
        session.execute(
            insert(ConversationTopic),
            [{"conversation_id": i, "topic_id": topics[i % len(topics)].id} for i in ids if i % 2 == 0],
        )
        session.commit()


def timed(client: object, url: str, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.json
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    from app import create_app
    from app.extensions import db, make_engine
    from app.models import Base
    from app.services.users import create_user

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    database = None
    if args.db == "postgresql":
        database = f"sb_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    try:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "INSTANCE_DIR": str(tmp),
                "ATTACHMENTS_DIR": str(tmp / "attachments"),
                "EMBEDDED_WORKER": False,
                "EMBEDDED_SMTP": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        with app.app_context():
            began = time.perf_counter()
            seed(args.conversations, args.messages)
            print(
                f"seeded {args.conversations} conversations x {args.messages} messages on {args.db} "
                f"in {time.perf_counter() - began:.1f} s"
            )
            user = create_user("bench@example.com", "Bench", "bench password", "agent")
            db.session.remove()
            client = app.test_client()
            login = client.post("/api/v1/auth/login", json={"email": user.email, "password": "bench password"})
            assert login.status_code == 200
            deep = client.get("/api/v1/conversations?limit=200")
            cursor = deep.json["next_cursor"]
            for _ in range(20):
                cursor = client.get(f"/api/v1/conversations?limit=200&cursor={cursor}").json["next_cursor"]
            middle = args.conversations // 2
            cases = [
                ("inbox first page (50)", "/api/v1/conversations"),
                ("inbox page 4,200 rows deep (50)", f"/api/v1/conversations?cursor={cursor}"),
                ("status=open (50)", "/api/v1/conversations?status=open"),
                ("assignee=none&status=open (50)", "/api/v1/conversations?assignee=none&status=open"),
                ("topic=1 (50)", "/api/v1/conversations?topic=1"),
                ("channel=email (50)", "/api/v1/conversations?channel=email"),
                ("q=cracked shade (text search)", "/api/v1/conversations?q=cracked%20shade"),
                ("q=c4242@ (identity search)", "/api/v1/conversations?q=c4242%40"),
                ("conversation detail", f"/api/v1/conversations/{middle}"),
                ("messages, latest page", f"/api/v1/conversations/{middle}/messages?order=desc"),
                ("customer timeline", f"/api/v1/customers/{middle}/timeline"),
                ("customer search q=Customer 42", "/api/v1/customers?q=Customer%2042"),
            ]
            print(f"{'request':42} {'p50 ms':>8} {'p95 ms':>8}")
            for label, path in cases:
                p50, p95 = timed(client, path, args.runs)
                print(f"{label:42} {p50:8.1f} {p95:8.1f}")
            db.session.remove()
            db.engine.dispose()
    finally:
        if database:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
