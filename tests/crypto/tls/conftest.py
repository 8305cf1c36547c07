"""Shared TLS test material: keys and certificates are made once per session
(RSA key generation is slow)."""

from __future__ import annotations

import pytest
from tls_helpers import Pki, make_pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()
