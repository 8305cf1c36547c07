"""tquic.sim."""
