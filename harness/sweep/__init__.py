"""Sweeps: a base run file crossed with a matrix (``spec``), planned into tasks (``plan``),
handed to worker processes as validated config objects (``work``) on a local pool or Ray
(``backends``) by the driver (``execute``); long suites split into shards (``shard``). Every
task runs through ``harness.run``; nothing here copies it."""
