"""Take the README's screenshot: the console's inbox with demo data, in real Chromium.

Starts a throwaway server on a fresh database, fills it with `flask seed-demo`, logs in as the demo's first
agent and saves docs/screenshot.png. Run: .venv/bin/python tools/readme_screenshot.py (after `make frontend`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import LiveServer  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DIST  # noqa: E402

OUT = ROOT / "docs" / "screenshot.png"


def main() -> None:
    if not (DIST / "index.html").is_file():
        sys.exit("build the console first: make frontend")
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp)).start()
        try:
            flask = Path(sys.executable).parent / "flask"
            subprocess.run(
                [str(flask), "--app", "wsgi", "seed-demo", "--customers", "60"], cwd=ROOT, env=server.env, check=True
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 860}, base_url=server.url)
                page.goto("/")
                page.get_by_test_id("login-email").fill(server.admin_email)
                page.get_by_test_id("login-password").fill(server.admin_password)
                page.get_by_test_id("login-submit").click()
                page.wait_for_url("**/app/inbox**")
                page.goto("/app/inbox?view=all")
                rows = page.get_by_test_id("conversation-list").get_by_role("option")
                expect(rows.first).to_be_visible()
                # Open a conversation that shows off the unified timeline: the one with the most messages
                # among the first rows.
                best, best_count = 0, -1
                for index in range(min(8, rows.count())):
                    rows.nth(index).click()
                    page.wait_for_load_state("networkidle")
                    count = page.locator(".message").count()
                    if count > best_count:
                        best, best_count = index, count
                rows.nth(best).click()
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(300)
                OUT.parent.mkdir(exist_ok=True)
                page.screenshot(path=OUT)
                browser.close()
                print(f"saved {OUT.relative_to(ROOT)}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
