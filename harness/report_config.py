"""The run file's ``report:`` section: how the audit report judges its findings.

::

    report:
      findings:
        min_n: 30                      # fewer examples than this: "inconclusive"
        thresholds:                    # METRIC -> limits; METRIC is "suite.metric", a metric
          accuracy: {minor: 0.92, major: 0.85}          # name, or its last dotted components
          robustness.pwws.attack_success_rate: {minor: 0.1, major: 0.3}
          ece: null                    # null: no judgement for this metric (informational)

A limit is the value at which a finding becomes that severe; the metric's own
``higher_is_better`` says on which side "worse" lies. Thresholds given here replace the defaults
of ``harness.reports.findings.DEFAULT_THRESHOLDS`` for the metrics they name; the others keep
their defaults unless ``defaults: false``. Kept in the core layer so ``config.RunConfig`` can
validate it without importing the report.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt

from harness.records import StrictModel


class Limits(StrictModel):
    """The values at which a finding is ``minor`` and ``major`` (either may be left out)."""

    minor: float | None = Field(default=None, description="Worse than this: a minor finding.")
    major: float | None = Field(default=None, description="Worse than this: a major finding.")


class FindingsConfig(StrictModel):
    min_n: PositiveInt = Field(
        default=30, description="Fewer examples than this make a finding inconclusive."
    )
    thresholds: dict[str, Limits | None] = Field(
        default_factory=dict,
        description="METRIC -> {minor, major}; null turns the judgement off for that metric.",
    )
    defaults: bool = Field(
        default=True, description="Also apply the built-in thresholds to metrics not named here."
    )


class ReportConfig(StrictModel):
    """How the audit report presents this run."""

    findings: FindingsConfig = Field(default_factory=FindingsConfig)
