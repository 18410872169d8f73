"""The local host's jobs dashboard in a real headless Chromium (Debian's, driven by Playwright):
load it, filter, open a running job, watch its progress move, terminate it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests

from tests.support import ROOT, SYSTEM_KEY, HostProcess, poll, require_tool

APP = ROOT / "tests" / "apps" / "conformance"
CHROMIUM_FLAGS = [  # this machine's network is closed: no background connections
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT")  # where to save one, e.g. docs/dashboard.png


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    # Debian's chromium (.ci/run installs it), or the Google Chrome of a hosted CI image
    executable = require_tool("chromium", "google-chrome", why="the dashboard's browser test")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new, empty profile
            executable_path=executable,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 800},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def start(host: HostProcess, name: str, payload, instance_id: str) -> str:
    response = host.request("POST", f"/api/start/{name}/{instance_id}", json=payload)
    assert response.status_code == 202, response.text
    return instance_id


def progress(page) -> int:
    text = page.locator("#d-progress").text_content() or ""
    found = re.search(r"Progress: (\d+) / 60", text)
    return int(found.group(1)) if found else -1


def test_the_dashboard_in_a_real_browser(start_host, page, tmp_path):
    host = start_host(app=APP, env={"CONFORMANCE_STATE_DIR": str(tmp_path)})
    for n in range(3):
        start(host, "Quick", n, f"quick-{n}")
    slow = start(host, "Steps", 60, "steps-1")
    assert (
        requests.get(f"{host.base}/runtime/webhooks/durabletask/dashboard", timeout=10).status_code
        == 401
    )

    page.goto(f"{host.base}/runtime/webhooks/durabletask/dashboard?code={SYSTEM_KEY}")
    rows = page.locator("#rows tr")
    poll(lambda: rows.count() == 4, 20, what="four instances listed")

    page.select_option("select[name=runtimeStatus]", "Completed")
    page.click("#filters button[type=submit]")
    poll(lambda: rows.count() == 3, 20, what="only the completed ones")
    assert "steps-1" not in page.locator("#rows").inner_text()

    page.select_option("select[name=runtimeStatus]", "")
    page.fill("input[name=name]", "steps")
    page.click("#filters button[type=submit]")
    poll(lambda: rows.count() == 1, 20, what="the job filtered by name")

    rows.first.click()
    poll(lambda: page.locator("#d-id").text_content() == slow, 10, what="the job opened")
    first = poll(lambda: progress(page) >= 1 and progress(page), 20, what="progress shown")
    poll(lambda: progress(page) > first, 20, what="the progress bar moving on its own")
    assert page.locator("#timeline li").count() >= 2  # its history, as a timeline
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT)

    page.click("button[data-action=terminate]")
    poll(lambda: page.locator("#d-status").text_content() == "Terminated", 20, what="terminated")
    status = requests.get(
        f"{host.base}/runtime/webhooks/durabletask/instances/{slow}",
        params={"code": SYSTEM_KEY},
        timeout=10,
    ).json()
    assert status["runtimeStatus"] == "Terminated" and status["output"] == "dashboard"


def test_the_refresh_keeps_the_applied_filters_not_half_typed_ones(start_host, page, tmp_path):
    """Filters typed but not applied change nothing: the periodic refresh still lists what the
    last Apply asked for (a job started afterwards shows up under it)."""
    host = start_host(app=APP, env={"CONFORMANCE_STATE_DIR": str(tmp_path)})
    for n in range(2):
        start(host, "Quick", n, f"quick-{n}")
    page.goto(f"{host.base}/runtime/webhooks/durabletask/dashboard?code={SYSTEM_KEY}")
    rows = page.locator("#rows tr")
    page.select_option("select[name=runtimeStatus]", "Completed")
    page.click("#filters button[type=submit]")
    poll(lambda: rows.count() == 2, 20, what="the two completed jobs")

    page.fill("input[name=name]", "matches-nothing")  # typed, not applied
    page.select_option("select[name=runtimeStatus]", "Failed")
    start(host, "Quick", 2, "quick-2")
    poll(
        lambda: "quick-2" in page.locator("#rows").inner_text(),
        20,
        what="a refresh with the applied filters listing the new job",
    )
    assert rows.count() == 3
    assert page.input_value("input[name=name]") == "matches-nothing"  # the typing is kept


def test_the_page_is_closed_to_other_origins(start_host, tmp_path):
    host = start_host(app=APP, env={"CONFORMANCE_STATE_DIR": str(tmp_path)})
    page = requests.get(
        f"{host.base}/runtime/webhooks/durabletask/dashboard",
        params={"code": SYSTEM_KEY},
        timeout=10,
    )
    assert page.status_code == 200 and SYSTEM_KEY not in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    script = requests.get(f"{host.base}/runtime/webhooks/durabletask/dashboard.js", timeout=10)
    assert script.status_code == 200 and "innerHTML" not in script.text
    assert Path(ROOT, "devhost", "http", "dashboard", "dashboard.js").read_text() == script.text


def test_the_status_filter_offers_every_runtime_status():
    from devhost.durable.model import RuntimeStatus

    html = (ROOT / "devhost" / "http" / "dashboard" / "index.html").read_text()
    offered = re.findall(r"<option>(\w+)</option>", html)
    assert sorted(offered) == sorted(RuntimeStatus)
