"""tquic.io."""
