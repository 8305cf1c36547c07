"""A real browser against ``tquic server --webtransport-echo``: headless Chromium loads a page
from the server, opens ``new WebTransport(...)`` to the echo endpoint, sends 100 datagrams and
10 streams of 100 KB, and every echo is checked here byte-for-byte.

Chromium (156) speaks WebTransport draft-02 (SETTINGS_ENABLE_WEBTRANSPORT, ``:protocol
webtransport``); the certificate is trusted through --ignore-certificate-errors-spki-list.
Skipped, with the reason, when Playwright or the system Chromium cannot start.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, chromium_h3, spki_sha256
from cli_run import running_server, server_argv

DATAGRAMS, STREAMS, STREAM_SIZE = 100, 10, 100_000

PAGE = """<!doctype html><meta charset="utf-8"><title>tquic WebTransport echo</title>
<script>
function pattern(i, size) {
  const a = new Uint8Array(size);
  for (let j = 0; j < size; j++) a[j] = (i * 31 + j * 7) & 255;
  return a;
}
async function readAll(readable) {
  const reader = readable.getReader(), parts = [];
  let n = 0;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    parts.push(value); n += value.length;
  }
  const out = new Uint8Array(n); let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
function b64(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}
async function runEcho(url, nd, ns, size) {
  const wt = new WebTransport(url);
  await wt.ready;
  const dgReader = wt.datagrams.readable.getReader();
  const dgWriter = wt.datagrams.writable.getWriter();
  const echoes = [];
  const receiving = (async () => {
    while (echoes.length < nd) {
      const {value, done} = await dgReader.read();
      if (done) break;
      echoes.push(b64(value));
    }
  })();
  for (let i = 0; i < nd; i++) {
    await dgWriter.ready;
    dgWriter.write(new TextEncoder().encode('datagram ' + String(i).padStart(4, '0')));
    await new Promise(r => setTimeout(r, 2));
  }
  await Promise.race([receiving, new Promise(r => setTimeout(r, 3000))]);
  const streams = await Promise.all([...Array(ns).keys()].map(async i => {
    const s = await wt.createBidirectionalStream();
    const echo = readAll(s.readable);
    const w = s.writable.getWriter();
    await w.write(pattern(i, size));
    await w.close();
    return b64(await echo);
  }));
  wt.close({closeCode: 7, reason: 'done'});
  return {datagrams: echoes, streams: streams};
}
</script>
"""


def expected_stream(index: int, size: int) -> bytes:
    pattern = bytes((index * 31 + j * 7) & 0xFF for j in range(256))
    return (pattern * (size // 256 + 1))[:size]


async def browser_echo(port: int, spki: str) -> dict[str, Any]:
    origin = f"127.0.0.1:{port}"
    async with chromium_h3(origin, spki) as browser:
        page = await browser.new_page()
        await page.goto(f"https://{origin}/", timeout=10_000)
        assert await page.title() == "tquic WebTransport echo", "page not served over h3"
        result: dict[str, Any] = await page.evaluate(
            "([u, nd, ns, size]) => runEcho(u, nd, ns, size)",
            [f"https://{origin}/echo", DATAGRAMS, STREAMS, STREAM_SIZE])
        return result


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}")
def test_chromium_webtransport_echo_is_byte_exact(cert_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    argv = server_argv(cert_dir, "--root", str(tmp_path), "--webtransport-echo", "/echo", "-q")
    with running_server(argv) as port:
        spki = spki_sha256((cert_dir / "cert.pem").read_bytes())
        result = asyncio.run(asyncio.wait_for(browser_echo(port, spki), 25))
    datagrams = sorted(base64.b64decode(d) for d in result["datagrams"])
    assert datagrams == [b"datagram %04d" % i for i in range(DATAGRAMS)]
    streams = [base64.b64decode(s) for s in result["streams"]]
    assert len(streams) == STREAMS
    for index, echo in enumerate(streams):
        assert echo == expected_stream(index, STREAM_SIZE), f"stream {index} differs"
