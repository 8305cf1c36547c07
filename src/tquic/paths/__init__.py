"""tquic.paths."""
