"""Headless Chromium (Debian's, driven by Playwright with ``executable_path``; never a
downloaded browser) pinned to a tquic server over HTTP/3, for the browser tests.

``chromium_h3(origin, spki)`` yields a browser context that speaks QUIC to ``origin``
and trusts the certificate whose SPKI hash is ``spki``; it skips the test, with the
reason, when Playwright or the browser cannot start.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CHROMIUM = "/usr/bin/chromium"


def spki_sha256(cert_pem: bytes) -> str:
    """What --ignore-certificate-errors-spki-list wants: base64(SHA-256(SubjectPublicKeyInfo))."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@asynccontextmanager
async def chromium_h3(origin: str, spki: str) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright (python) is not installed")
    async with async_playwright() as pw:
        with tempfile.TemporaryDirectory() as profile:
            try:
                browser = await pw.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, headless=True, args=[
                        "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--origin-to-force-quic-on={origin}",
                        f"--ignore-certificate-errors-spki-list={spki}"])
            except Exception as exc:  # any launch failure: Chromium cannot start here
                pytest.skip(f"Chromium cannot start: {str(exc).splitlines()[0]}")
            try:
                yield browser
            finally:
                await browser.close()
