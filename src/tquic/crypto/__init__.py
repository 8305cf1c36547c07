"""tquic.crypto."""
