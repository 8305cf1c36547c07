"""SSLKEYLOGFILE-format key logging (the NSS key log format Wireshark reads).

One line per secret: ``<LABEL> <client_random hex> <secret hex>``.  Only
written when the configuration asks for it; the file is opened in append mode
for each line so that several connections can share it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["KeyLogger"]


class KeyLogger:
    __slots__ = ("_callback", "_path")

    def __init__(self, path: str | None, callback: Callable[[str], None] | None) -> None:
        self._path = path
        self._callback = callback

    @property
    def enabled(self) -> bool:
        return self._path is not None or self._callback is not None

    def log(self, label: str, client_random: bytes, secret: bytes) -> None:
        if not self.enabled:
            return
        line = f"{label} {client_random.hex()} {secret.hex()}"
        if self._callback is not None:
            self._callback(line)
        if self._path is not None:
            try:
                with open(self._path, "a", encoding="ascii") as f:
                    f.write(line + "\n")
            except OSError:
                # Key logging is a debugging aid; a full disk must not break
                # the handshake.
                pass
