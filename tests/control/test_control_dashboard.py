"""The live dashboard in a real browser (Debian's Chromium, headless, driven by Playwright;
no browser download) during a real bonded transfer: a ``tquic.bond`` client and server
with two emulated links (dsl, lte) and packets through the tunnel both ways.  The numbers
the page shows are the API's for the same sample; a role toggled on the page is obeyed by
the bond client; the page fits a phone's width.

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
from bond_live import BondLab
from control_running import TOKEN

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
def transfer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BondLab]:
    from tquic.crypto.tls.certs import generate_self_signed

    certs = tmp_path_factory.mktemp("bondcerts")
    cert, key = generate_self_signed(("localhost", "127.0.0.1"), key_type="ec")
    (certs / "cert.pem").write_bytes(cert)
    (certs / "key.pem").write_bytes(key)
    lab = BondLab(certs, control="127.0.0.1:0", token=TOKEN)
    try:
        api = ControlClient(lab.address, TOKEN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            links = api.get("/links")["links"]
            if len(links) == 2 and all(lk["state"] == "up" and lk["rate_up"] > 1e5
                                       for lk in links):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the bond did not get going on two links: {links}")
        yield lab
    finally:
        lab.close()


UNITS = {"ms": 1e-3, "bit/s": 1, "kbit/s": 1e3, "Mbit/s": 1e6, "Gbit/s": 1e9, "B": 1,
         "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def shows(text: str, value: float) -> bool:
    """The page's text is ``value`` in the unit it names, rounded to the digits it shows."""
    number, unit = text.split(" ")
    decimals = len(number.partition(".")[2])
    step = UNITS[unit] * 10.0 ** -decimals
    return abs(float(number) * UNITS[unit] - value) <= step / 2 * 1.0001


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
        browser: Any, transfer: BondLab, tmp_path: Path) -> None:
    api = ControlClient(transfer.address, TOKEN)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, color_scheme="dark")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://{transfer.address}/?token={TOKEN}")
    assert page.url == f"http://{transfer.address}/"  # the token left the address bar
    page.wait_for_selector('[data-link="lte"]', timeout=10_000)
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")

    shown, answer = _same_sample(page, api)
    assert set(shown["links"]) == {link["name"] for link in answer["links"]} == {"dsl", "lte"}
    for link in answer["links"]:
        fields = shown["links"][link["name"]]
        for name in FIELDS:
            raw = fields[name]["raw"]
            if isinstance(link[name], str):
                assert raw == link[name], (link["name"], name)
            else:
                assert _number(raw) == link[name], (link["name"], name, raw, link[name])
        assert shows(fields["srtt"]["text"], link["srtt"]), (fields["srtt"], link["srtt"])
        assert shows(fields["rate_up"]["text"], link["rate_up"]), (fields["rate_up"], link)
        assert shows(fields["bytes_sent"]["text"], link["bytes_sent"])
    header = page.evaluate("() => document.getElementById('links-up').textContent")
    assert header == "2/2"

    # Toggle lte to backup on the page: the bond client stops sending on it while dsl works.
    before = api.get("/links/lte")["link"]["rate_up"]
    page.click('[data-link="lte"] [data-role="backup"]')
    deadline = time.monotonic() + 5
    while api.get("/links/lte")["link"]["role"] != "backup":
        assert time.monotonic() < deadline, "the bond client did not take the new role"
        time.sleep(0.1)
    page.wait_for_function("""() => document.querySelector(
        '[data-link="lte"] [data-field="role"]').dataset.raw === 'backup'""", timeout=5_000)
    assert page.get_attribute('[data-link="lte"] [data-role="backup"]', "class") == "on"
    async def lte() -> Any:
        return next(row for row in transfer.client.status().links if row.name == "lte")

    deadline = time.monotonic() + 5  # the link manager applies roles on its next tick
    while (row := transfer.call(lte)).effective_role != "backup":
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    assert row.role == "backup"  # the daemon's own state
    time.sleep(2.0)  # four samples with the link in backup
    after = api.get("/links")
    rates = {link["name"]: link["rate_up"] for link in after["links"]}
    assert rates["lte"] < 0.2 * before, (before, rates)
    assert rates["dsl"] > 1e5, rates
    page.wait_for_selector('#log li[data-kind="role"]', timeout=5_000)
    assert "lte: role primary -> backup" in page.inner_text("#log")

    # The stream breaks (the daemon ended it): the page reconnects, the daemon replays its
    # recent events, and the page shows each once.
    async def drop() -> None:
        transfer.control.sampler.drop_subscribers()

    transfer.call(drop)
    page.wait_for_function("() => document.getElementById('conn').textContent !== 'live'",
                           timeout=5_000)
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'",
                           timeout=10_000)
    assert page.inner_text("#log").count("lte: set role backup (API)") == 1

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("TQUIC_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    assert errors == []
    page.close()


def test_the_page_fits_a_phone(browser: Any, transfer: BondLab) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True,
                            device_scale_factor=2)
    page.goto(f"http://{transfer.address}/?token={TOKEN}")
    page.wait_for_selector('[data-link="dsl"]', timeout=10_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide on a 375 px screen"
    page.close()


def test_without_the_token_the_page_asks_for_it(browser: Any, transfer: BondLab) -> None:
    page = browser.new_page()
    response = page.goto(f"http://{transfer.address}/")
    assert response is not None and response.status == 401
    assert "Token needed" in page.inner_text("body")
    page.close()
