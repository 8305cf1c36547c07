"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import tquic


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the cert.pem and key.pem that ``tquic certs`` writes."""
    directory = tmp_path_factory.mktemp("certs")
    result = tquic("certs", str(directory))
    assert result.returncode == 0, result.stderr
    return directory
