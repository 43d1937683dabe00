"""The audit report: a self-contained HTML document per run folder (see ``audit``)."""

from __future__ import annotations

from harness.reports.audit import build_report, write_report

__all__ = ["build_report", "write_report"]
