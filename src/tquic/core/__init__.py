"""tquic.core."""
