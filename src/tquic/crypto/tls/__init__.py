"""tquic.crypto.tls."""
