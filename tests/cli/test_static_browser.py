"""A real browser against ``tquic server`` as a static web server (issue #13): headless
Chromium (Debian's, 156) loads ``https://localhost:PORT/`` over HTTP/3 from a server
listening on the dual-stack ``[::]`` (Chromium tries ::1 for localhost first) and
renders the page: index.html as text/html, its stylesheet and script by their
content types, the navigation's next-hop protocol h3, and the access log's line.

Skipped, with the reason, when Playwright or the system Chromium cannot start.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, chromium_h3, spki_sha256
from site_client import running_site, wait_for_log

INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tquic static page</title>
<link rel="stylesheet" href="style.css"><script src="app.js" defer></script></head>
<body><h1 id="title">Served by tquic over HTTP/3</h1><p id="js">script not run</p></body></html>
"""


async def render(origin: str, spki: str) -> dict[str, Any]:
    async with chromium_h3(origin, spki) as browser:
        page = await browser.new_page()
        response = await page.goto(f"https://{origin}/", timeout=10_000)
        assert response is not None
        await page.wait_for_function(
            "document.getElementById('js').textContent !== 'script not run'",
            timeout=5_000)
        found: dict[str, Any] = await page.evaluate("""() => ({
            title: document.title,
            heading: document.getElementById('title').textContent,
            js: document.getElementById('js').textContent,
            color: getComputedStyle(document.getElementById('title')).color,
            protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol,
        })""")
        found["content_type"] = response.headers.get("content-type")
        found["status"] = response.status
        return found


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}")
def test_chromium_renders_index_html_over_h3_from_localhost(cert_dir: Path,
                                                           tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_text(INDEX)
    (root / "style.css").write_text("#title { color: rgb(0, 128, 0) }\n")
    (root / "app.js").write_text(
        "document.getElementById('js').textContent = 'script ran';\n")
    with running_site(cert_dir, root, tmp_path / "access.log", listen="[::]:0") as site:
        spki = spki_sha256((cert_dir / "cert.pem").read_bytes())
        found = asyncio.run(asyncio.wait_for(render(f"localhost:{site.port}", spki), 20))
        lines = wait_for_log(site, 3)
    assert found["status"] == 200
    assert found["content_type"] == "text/html; charset=utf-8"  # shown, not downloaded
    assert found["title"] == "tquic static page"
    assert found["heading"] == "Served by tquic over HTTP/3"
    assert found["color"] == "rgb(0, 128, 0)"  # style.css arrived as text/css
    assert found["js"] == "script ran"  # app.js arrived and ran
    assert found["protocol"] == "h3"
    assert any(" h3 GET / 200 " in line for line in lines), lines
    assert any(" h3 GET /style.css 200 " in line for line in lines), lines
