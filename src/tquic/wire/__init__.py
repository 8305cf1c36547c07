"""tquic.wire."""
