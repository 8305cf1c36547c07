"""The live dashboard in a real browser (Debian's Chromium, headless, driven by Playwright;
no browser download) during a real multipath transfer: ``tquic server --control`` with two
emulated links.  The numbers the page shows are the API's for the same sample; a role
toggled on the page is obeyed by the server; the page fits a phone's width.

Set TQUIC_DASHBOARD_SCREENSHOT=PATH to keep the screenshot (docs/img/dashboard.png is
made that way)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN
from live_transfer import LiveTransfer, live_transfer

from tquic.control.client import ControlClient

pytestmark = pytest.mark.timeout(120)
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIELDS = ("state", "role", "srtt", "min_rtt", "rate_up", "rate_down", "bytes_sent",
          "bytes_received", "cwnd", "share")

READ_PAGE = """() => {
  const out = {seq: Number(document.getElementById('seq').dataset.seq || 0), links: {}};
  for (const card of document.querySelectorAll('[data-link]')) {
    const link = {};
    for (const f of card.querySelectorAll('[data-field]'))
      link[f.dataset.field] = {raw: f.dataset.raw, text: f.textContent};
    out.links[card.dataset.link] = link;
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright (python) is not installed")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                                 timeout=30_000)
        except Exception as exc:  # the reason Chromium cannot start, as a skip
            pytest.skip(f"Chromium cannot start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def transfer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTransfer]:
    from tquic.cli.main import main

    certs = tmp_path_factory.mktemp("certs")
    assert main(["certs", str(certs)]) == 0
    with live_transfer(certs, ("--control", "127.0.0.1:0", "--control-token", TOKEN)) as live:
        api = ControlClient(live.control, TOKEN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            links = api.get("/links")["links"]
            if len(links) == 2 and all(lk["state"] == "up" and lk["rate_up"] > 1e5
                                       for lk in links):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the transfer did not get going on two paths: {links}")
        yield live


def _number(raw: str) -> float | None:
    return None if raw == "" else float(raw)


def _same_sample(page: Any, api: ControlClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's numbers and the API's answer for one and the same sample."""
    for _ in range(10):
        answer = api.get("/links")
        page.wait_for_function(
            f"() => Number(document.getElementById('seq').dataset.seq) >= {answer['seq']}",
            timeout=5_000)  # the page gets the sample within a refresh
        shown = page.evaluate(READ_PAGE)
        if shown["seq"] == answer["seq"]:
            return shown, answer
    raise AssertionError("the page and the API never showed the same sample")


def test_the_page_shows_the_apis_numbers_and_obeys_a_role_toggle(
        browser: Any, transfer: LiveTransfer, tmp_path: Path) -> None:
    api = ControlClient(transfer.control, TOKEN)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, color_scheme="dark")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://{transfer.control}/?token={TOKEN}")
    assert page.url == f"http://{transfer.control}/"  # the token left the address bar
    page.wait_for_selector('[data-link="c1.p1"]', timeout=10_000)
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")

    shown, answer = _same_sample(page, api)
    assert set(shown["links"]) == {link["name"] for link in answer["links"]} == {"c1.p0", "c1.p1"}
    for link in answer["links"]:
        fields = shown["links"][link["name"]]
        for name in FIELDS:
            raw = fields[name]["raw"]
            if isinstance(link[name], str):
                assert raw == link[name], (link["name"], name)
            else:
                assert _number(raw) == link[name], (link["name"], name, raw, link[name])
        assert fields["srtt"]["text"] == f"{link['srtt'] * 1000:.1f} ms"
        assert fields["rate_up"]["text"] == f"{link['rate_up'] / 1e6:.2f} Mbit/s"
    header = page.evaluate("() => document.getElementById('links-up').textContent")
    assert header == "2/2"

    # Toggle c1.p1 to backup on the page: the server signals PATH_STATUS_BACKUP and stops
    # sending on it while c1.p0 works.
    before = api.get("/links/c1.p1")["link"]["rate_up"]
    page.click('[data-link="c1.p1"] [data-role="backup"]')
    deadline = time.monotonic() + 5
    while api.get("/links/c1.p1")["link"]["role"] != "backup":
        assert time.monotonic() < deadline, "the server did not take the new role"
        time.sleep(0.1)
    page.wait_for_function("""() => document.querySelector(
        '[data-link="c1.p1"] [data-field="role"]').dataset.raw === 'backup'""", timeout=5_000)
    assert page.get_attribute('[data-link="c1.p1"] [data-role="backup"]', "class") == "on"
    time.sleep(2.0)  # four samples with the path in backup
    after = api.get("/links")
    rates = {link["name"]: link["rate_up"] for link in after["links"]}
    assert rates["c1.p1"] < 0.2 * before, (before, rates)
    assert rates["c1.p0"] > 1e5, rates
    page.wait_for_selector('#log li[data-kind="role"]', timeout=5_000)
    assert "c1.p1: role primary -> backup" in page.inner_text("#log")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("TQUIC_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    assert errors == []
    page.close()


def test_the_page_fits_a_phone(browser: Any, transfer: LiveTransfer) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True,
                            device_scale_factor=2)
    page.goto(f"http://{transfer.control}/?token={TOKEN}")
    page.wait_for_selector('[data-link="c1.p0"]', timeout=10_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide on a 375 px screen"
    page.close()


def test_without_the_token_the_page_asks_for_it(browser: Any, transfer: LiveTransfer) -> None:
    page = browser.new_page()
    response = page.goto(f"http://{transfer.control}/")
    assert response is not None and response.status == 401
    assert "Token needed" in page.inner_text("body")
    page.close()
