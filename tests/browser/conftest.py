"""The console in a real browser: Debian's chromium driven by Playwright, against the local stack.

One stack per session (its own: the browser tests change lists and settle cases, which the API
contract fuzzing must not see mid-run), on a simulated clock started at the wall time so no
schedule runs by itself, with the model registry re-read every second so a published shadow
model serves at once. Each test gets a fresh page, signed in with the local principal as a person
would: typing the key and secret into the sign-in form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dozor_local.server import LocalServer, simulated

CHROMIUM = Path(os.environ.get("DOZOR_CHROMIUM", "/usr/bin/chromium"))
# Headless, as root in a container: no sandbox, no GPU, no /dev/shm (often 64 MB there).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
_QUIET = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "MODEL_REFRESH_SECONDS": "1",
    # As the integration stack: the deployed 800 ms is for Lambda; a loaded test machine can spend
    # it on itself and decide degraded (no history, no lists), which is not what these tests are about.
    "DECISION_BUDGET_MS": "5000",
}
VIEWPORT = {"width": 1200, "height": 760}


@pytest.fixture(scope="session")
def local() -> Iterator[LocalServer]:
    with LocalServer(api_port=0, clock=simulated(), retry_after=0, env_overrides=_QUIET) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: `make browser-deps` installs Debian's (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests need it

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console(chromium: Any, local: LocalServer) -> Iterator[Any]:
    """A page on the console, signed in from the keyboard with the local principal."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(local.api_url + "/console/")
    page.get_by_label("Access key ID").fill("testing")
    # keys and tokens are never offered to the browser's password store (a stale secret refilled)
    autocomplete = "inputs => inputs.map(i => [i.name, i.getAttribute('autocomplete')])"
    assert page.locator("form input").evaluate_all(autocomplete) == [
        ["accessKeyId", "off"],
        ["secretAccessKey", "off"],
        ["sessionToken", "off"],
    ]
    page.keyboard.press("Tab")
    page.keyboard.type("testing")  # the secret, typed where the Tab key took the focus
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Review queue").wait_for()
    yield page
    context.close()
    assert errors == [], errors  # no script error on any page the test visited


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where page screenshots go: DOZOR_CONSOLE_SCREENSHOTS (docs/console for the README), else nowhere."""
    target = os.environ.get("DOZOR_CONSOLE_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
