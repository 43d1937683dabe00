"""The one run pipeline, by role: ``folder`` (open a run folder: identity and resume checks),
``inputs`` (threads, seeds, data and model, set up once for runs and sweep shards),
``predictions`` (compute, share, cache), ``suites`` (run one suite, its examples log),
``record`` (build the record from the run's state), ``pipeline`` (``execute``) and ``rerun``."""
