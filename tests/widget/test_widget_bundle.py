"""The built widget: the loader a shop pastes stays within its 5 KB (gzipped) budget and loads nothing else."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.conftest import ON_CI, ROOT

DIST = ROOT / "app" / "static" / "widget"
LOADER_BUDGET = 5 * 1024


@pytest.fixture
def loader_js() -> str:
    path = DIST / "widget.js"
    if not path.is_file():
        if ON_CI:
            pytest.fail("the widget is not built; `make test` builds it before the suite")
        pytest.skip("the widget is not built: run `make frontend`")
    return path.read_text()


def test_loader_is_within_its_budget(loader_js: str) -> None:
    size = len(gzip.compress(loader_js.encode(), compresslevel=9))
    assert size <= LOADER_BUDGET, f"widget.js is {size} bytes gzipped"


def test_loader_imports_nothing_and_writes_no_html(loader_js: str) -> None:
    # One self-contained script: no module imports, no fetches, no markup injected into the shop's page.
    assert not re.search(r"\bimport\s*\(|\bfetch\(|innerHTML|insertAdjacentHTML|document\.write", loader_js)
