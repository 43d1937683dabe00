"""Metrics computed from labels and predictions (scikit-learn semantics, numpy only)."""
