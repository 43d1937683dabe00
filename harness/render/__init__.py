"""One HTML, SVG and number-formatting stack for every page harness writes.

The audit report (``harness.reports``) and the leaderboard site (``harness.leaderboard``) both
build their documents here, so escaping, number formatting and chart drawing have one
implementation each:

- ``html``: ``Markup`` and ``el()``, the escaping-first builder (data is always escaped);
- ``numbers``: ``fmt`` and friends, the one number formatter, with the missing-value mark;
- ``svg``: chart primitives (roots, text, lines, the one tick generator, colours);
- ``charts``: the report's charts (bars, reliability, confusion matrix, lines);
- ``plots``: the site's charts (scatter with a Pareto front, interval rows).

Nothing here reads a record: callers pass plain labels and numbers.
"""
