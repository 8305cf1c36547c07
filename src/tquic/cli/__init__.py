"""tquic.cli."""
