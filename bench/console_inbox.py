"""Benchmark: the agent console's inbox with 10,000 open conversations, in real Chromium.

Measures, against a real gunicorn server on a fresh SQLite database:
  * the first page's render time after the API answered (DOM updated, and painted on screen);
  * frame times while the agent scrolls the virtualised list from top to bottom, first while pages
    are still being fetched (infinite scroll), then through all 10,000 loaded rows;
  * how many row elements exist in the DOM at any time.

Run: .venv/bin/python bench/console_inbox.py [--conversations 10000] (needs `make frontend` and chromium).
Prints figures; asserts nothing (tests never time things).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import LiveServer  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DIST  # noqa: E402

SUBJECTS = ["Parcel late", "Charged twice", "Change address", "Broken on arrival", "Return label", "Invoice copy"]
TEXTS = [
    "Where is my parcel? It should have arrived yesterday.",
    "I was charged twice for the same order, please refund one.",
    "Can I still change the delivery address for order 4411?",
    "The lamp arrived with a cracked shade.",
    "How do I print a return label?",
    "Could you send me a copy of the invoice?",
]


def seed(database_url: str, count: int) -> float:
    """Insert ``count`` open conversations, each with a customer, an identity and one message."""
    from sqlalchemy import insert

    from app import create_app
    from app.extensions import db
    from app.models import Conversation, Customer, CustomerIdentity, Message

    started = time.perf_counter()
    app = create_app({"DATABASE_URL": database_url, "EMBEDDED_WORKER": False, "EMBEDDED_SMTP": False})
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = db.session
        customers = [{"name": f"Customer {n:05d}", "attributes": {}} for n in range(count)]
        session.execute(insert(Customer), customers)
        ids = [row[0] for row in session.execute(Customer.__table__.select().with_only_columns(Customer.id))]
        session.execute(
            insert(CustomerIdentity),
            [
                {
                    "customer_id": cid,
                    "kind": "email",
                    "value": f"c{cid}@example.com",
                    "verified": True,
                    "source": "email",
                }
                for cid in ids
            ],
        )
        conversations = []
        for n, cid in enumerate(ids):
            at = now - dt.timedelta(seconds=n * 37)
            conversations.append(
                {
                    "number": n + 1,
                    "customer_id": cid,
                    "status": "open",
                    "subject": SUBJECTS[n % len(SUBJECTS)],
                    "origin_channel": "email",
                    "last_channel": "email",
                    "created_at": at,
                    "last_activity_at": at,
                    "last_message_at": at,
                }
            )
        session.execute(insert(Conversation), conversations)
        rows = session.execute(
            Conversation.__table__.select().with_only_columns(
                Conversation.id, Conversation.customer_id, Conversation.last_activity_at
            )
        )
        session.execute(
            insert(Message),
            [
                {
                    "conversation_id": cid,
                    "customer_id": customer_id,
                    "channel": "email",
                    "direction": "in",
                    "kind": "message",
                    "text": TEXTS[cid % len(TEXTS)],
                    "delivery_status": "received",
                    "created_at": at,
                }
                for cid, customer_id, at in rows
            ],
        )
        session.commit()
        db.session.remove()
    db.engine.dispose()
    return time.perf_counter() - started


# Runs in the page: scroll the list by ``step`` px every animation frame until the end, and record
# the time between frames. With infinite scroll on, it waits at the bottom for the next page.
SCROLL_SCRIPT = """
async ([step, maxMs]) => {
  const list = document.querySelector('[data-testid="conversation-list"]')
  const deltas = []
  const longFrames = []
  // Long Animation Frames (>50 ms) tell how much of a slow frame was our script versus the machine.
  const observer = new PerformanceObserver((list) => longFrames.push(...list.getEntries()))
  try { observer.observe({ type: 'long-animation-frame' }) } catch (e) { /* older Chromium */ }
  let maxRows = 0
  const started = performance.now()
  let last = started
  await new Promise((resolve) => {
    function frame(now) {
      deltas.push(now - last)
      last = now
      maxRows = Math.max(maxRows, list.querySelectorAll('[role="option"]').length)
      list.scrollTop += step
      const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 2
      const done = atEnd && list.getAttribute('data-complete') === 'true'
      if (done || now - started > maxMs) resolve()
      else requestAnimationFrame(frame)
    }
    requestAnimationFrame(frame)
  })
  observer.disconnect()
  const scripts = longFrames.map((f) => f.scripts.reduce((sum, s) => sum + s.duration, 0))
  return {
    deltas: deltas.slice(1), ms: performance.now() - started, maxRows, scrollHeight: list.scrollHeight,
    longFrames: longFrames.length, longFrameScriptMax: Math.max(0, ...scripts),
    longFrameScriptTotal: scripts.reduce((a, b) => a + b, 0),
    longFrameScripts: longFrames.flatMap((f) => f.scripts.filter((s) => s.duration > 10).map((s) =>
      `${Math.round(s.duration)} ms ${s.invokerType} ${s.invoker} ${s.sourceFunctionName || ''}`)),
  }
}
"""


def frame_stats(result: dict) -> dict[str, float]:
    deltas = result["deltas"]
    ordered = sorted(deltas)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {
        "frames": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(pct(0.95), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(ordered[-1], 2),
        "dropped_pct": round(100 * sum(d > 25 for d in ordered) / len(ordered), 2),  # a frame took >1.5 vsyncs
        "over_50ms": sum(d > 50 for d in ordered),
        "long_frames": result.get("longFrames", 0),
        "script_ms_in_long_frames_max": round(result.get("longFrameScriptMax", 0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--step", type=int, default=600, help="pixels scrolled per frame (fast flinging)")
    args = parser.parse_args()
    print(
        f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(frame times suffer when other work shares the CPU)"
    )
    if not (DIST / "index.html").is_file():
        sys.exit("build the console first: make frontend")
    if not CHROMIUM.exists():
        sys.exit(f"chromium not found at {CHROMIUM}: run tools/ensure-chromium.sh")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp)).start()
        try:
            seconds = seed(server.database_url, args.conversations)
            print(f"seeded {args.conversations} open conversations in {seconds:.1f} s")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                # bypass_csp: wait_for_function evaluates strings, which the console's CSP (rightly) forbids.
                page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=server.url, bypass_csp=True)
                page.goto("/")
                page.get_by_test_id("login-email").fill(server.admin_email)
                page.get_by_test_id("login-password").fill(server.admin_password)
                page.get_by_test_id("login-submit").click()
                page.wait_for_url("**/app/inbox**")
                # A cold first load, then three warm ones (view switches), each timed by the console itself.
                page.goto("/app/inbox?view=all")
                page.wait_for_function("(window.__switchboardPerf || []).length >= 1")
                for view in ("unassigned", "all", "unassigned", "all"):
                    before = page.evaluate("window.__switchboardPerf.length")
                    page.get_by_test_id(f"view-{view}").click()
                    page.wait_for_function(f"window.__switchboardPerf.length > {before}")
                perf = page.evaluate("window.__switchboardPerf")
                api = page.evaluate(
                    """() => performance.getEntriesByType('resource')
                        .filter((e) => e.name.includes('/api/v1/conversations?'))
                        .map((e) => e.responseEnd - e.requestStart)"""
                )
                print("first page (50 rows) after the API answered, per load:")
                for entry in perf:
                    print(
                        f"  DOM updated {entry['firstPageDomMs']:6.1f} ms   painted {entry['firstPagePaintMs']:6.1f} ms"
                    )
                paints = [entry["firstPagePaintMs"] for entry in perf]
                print(f"  median painted {statistics.median(paints):.1f} ms, worst {max(paints):.1f} ms")
                print(f"  API answer time (request to last byte) median {statistics.median(api):.1f} ms")

                page.evaluate("""() => { const list = document.querySelector('[data-testid="conversation-list"]');
                    list.scrollTop = 0 }""")
                loading = page.evaluate(SCROLL_SCRIPT, [args.step, 120_000])
                rows_loaded = round(loading["scrollHeight"] / 76)
                print(
                    f"scroll top→bottom while pages load (infinite scroll): {loading['ms'] / 1000:.1f} s, "
                    f"{rows_loaded} rows loaded, at most {loading['maxRows']} row elements in the DOM"
                )
                print("  frame times:", json.dumps(frame_stats(loading)))
                page.evaluate("""() => { document.querySelector('[data-testid="conversation-list"]').scrollTop = 0 }""")
                page.wait_for_timeout(300)
                loaded = page.evaluate(SCROLL_SCRIPT, [args.step, 120_000])
                print(
                    f"scroll top→bottom through all {rows_loaded} loaded rows: {loaded['ms'] / 1000:.1f} s, "
                    f"at most {loaded['maxRows']} row elements in the DOM"
                )
                print("  frame times:", json.dumps(frame_stats(loaded)))
                for result in (loading, loaded):
                    for line in result["longFrameScripts"]:
                        print("  slow script in a long frame:", line)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
