"""The console SPA is served at / and /app/* (history fallback), with hashed assets and a strict CSP."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><div id="app"></div><script src="/console/assets/app-1a2b.js">')
    (root / "assets" / "app-1a2b.js").write_text("console.log('hi')")
    return root


@pytest.fixture
def app_config(app_config, dist):
    return app_config | {"CONSOLE_DIST_DIR": str(dist)}


@pytest.mark.parametrize("path", ["/", "/app", "/app/", "/app/inbox", "/app/inbox/42?view=all", "/app/admin/users"])
def test_every_client_route_serves_the_index_page_without_login(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 200
    assert b'<div id="app">' in response.data
    assert response.headers["Cache-Control"] == "no-cache"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp


def test_hashed_assets_are_cached_for_a_year(anon_client):
    response = anon_client.get("/console/assets/app-1a2b.js")
    assert response.status_code == 200
    assert "immutable" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_missing_asset_and_path_traversal_are_not_found(anon_client):
    assert anon_client.get("/console/assets/nope.js").status_code == 404
    assert anon_client.get("/console/../../app/config.py").status_code == 404


def test_the_api_is_not_swallowed_by_the_fallback(anon_client):
    response = anon_client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.is_json


def test_unbuilt_console_says_how_to_build_it(anon_client, app, tmp_path):
    app.config["CONSOLE_DIST_DIR"] = str(tmp_path / "nowhere")
    response = anon_client.get("/app/inbox")
    assert response.status_code == 503
    assert b"npm run build" in response.data
