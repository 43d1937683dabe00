"""The one run pipeline: open a run folder, predict, run suites, write the record; rerun."""
