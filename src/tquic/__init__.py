"""tquic: QUIC with multipath, HTTP/3 and DATAGRAM, built for WAN bonding."""

__version__ = "0.1.0"

__all__ = ["__version__"]
