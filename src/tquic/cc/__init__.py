"""tquic.cc."""
