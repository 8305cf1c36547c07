"""Helpers to test tquic on real kernel networking (see :mod:`tquic.testing.netns`)."""
