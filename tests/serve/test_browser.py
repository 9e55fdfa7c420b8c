"""The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright opens the run list, goes to a run, draws a stroke and sees probabilities.

Skipped, with the reason shown, where Playwright or a system Chromium is missing;
`.ci/run` installs both so CI runs it.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest
import uvicorn

from neuralab.serve import ServeSettings, create_app

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no system Chromium (apt-get install chromium)"
)


@pytest.fixture
def server_url(served):
    """The app under uvicorn on a free loopback port, in a thread, for one test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(ServeSettings(runs_dir=served["root"])),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_draw_a_digit_and_see_probabilities(server_url, served):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server_url)
        page.click(f"a.run-link:text('{served['digits'].name}')")
        page.wait_for_selector("canvas#pad")
        box = page.locator("canvas#pad").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 110, box["y"] + 30)
        page.mouse.down()
        for step in range(1, 11):  # a vertical stroke: a "1"
            page.mouse.move(box["x"] + 110, box["y"] + 30 + 16 * step)
        page.mouse.up()
        page.wait_for_selector("#probabilities .bar")
        labels = page.locator("#probabilities .prob").all_inner_texts()
        percentages = page.locator("#probabilities .number").all_inner_texts()
        assert labels == [str(i) for i in range(10)]
        assert sum(float(p.rstrip("%")) for p in percentages) == pytest.approx(100, abs=1)
        assert page.locator("svg.curve").count() == 2  # loss and accuracy curves
        assert page.locator("#config").inner_text().startswith("name: digits")
        browser.close()
    assert errors == []


def test_run_list_shows_every_run(server_url, served):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server_url)
        page.wait_for_selector("#runs")
        names = page.locator("a.run-link").all_inner_texts()
        assert names == sorted([served["digits"].name, served["houses"].name])
        page.goto(f"{server_url}/#/run/{served['houses'].name}")
        page.wait_for_selector("form.inputs")
        page.select_option("select[name=district]", index=0)
        page.click("form.inputs button")
        page.wait_for_selector("#probabilities strong")
        assert float(page.locator("#probabilities strong").inner_text()) != 0
        browser.close()
