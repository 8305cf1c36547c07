"""Helpers to test tquic: two engines in memory with explicit time
(:mod:`tquic.testing.engines`), and real kernel networking (:mod:`tquic.testing.netns`)."""
