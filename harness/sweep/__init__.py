"""Sweeps: a base run file crossed with a matrix (``spec``), executed locally or on Ray
(``execute``), suites split into shards (``shard``). Reuses ``harness.run``; never copies it."""
