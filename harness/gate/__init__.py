"""The CI gate: typed rules (``rules``), the run folders' evidence (``inputs``, ``evidence``,
``scorers``, ``replicates``), decisions (``decide``, ``evaluate``), outputs and ``--plan``.

A consumer: it reads records and per-example files only, never a model, torch or a suite.
"""
