"""tquic.paths.schedulers."""
