"""Bonding demonstrations: simulated multipath scenarios and the live ``tquic demo``.

- ``scenarios``: the multipath scenarios of benchmarks/multipath.py and
  tests/sim/test_multipath_scenarios.py (hetero3, failover, flap, backup) on
  tquic.sim, in virtual time.
- ``live``: ``tquic demo`` in one asyncio process: a tquic server, a netem
  relay with one emulated link per client address, a multipath client.
"""
