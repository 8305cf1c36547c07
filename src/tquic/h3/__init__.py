"""tquic.h3."""
