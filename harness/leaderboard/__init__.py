"""The static, significance-aware leaderboard built from verified run records.

``entries`` adds and verifies entries, ``pairwise`` tests every pair of a table (Holm),
``ranking`` turns the tests into rank intervals, ``pages`` (with ``layout``, ``tables`` and
``charts``) renders HTML through ``harness.render``, ``site`` writes and serves the site.
Nothing here imports torch or a suite.
"""

from __future__ import annotations

from harness.leaderboard.entries import SiteSettings, add_entry, load_entries, load_settings
from harness.leaderboard.site import BuildResult, build_site, default_paths, make_server

__all__ = [
    "BuildResult",
    "SiteSettings",
    "add_entry",
    "build_site",
    "default_paths",
    "load_entries",
    "load_settings",
    "make_server",
]
