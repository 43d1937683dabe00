"""Explainability building blocks for the ``explain`` suite.

``words`` maps sub-word tokens to words, ``attribution`` runs Captum's methods in batches,
``faithfulness`` scores explanations by removing words (ERASER, deletion/insertion curves),
``robustness`` wraps Captum's infidelity and sensitivity, ``sanity`` holds the
model-randomisation check and method agreement, ``summary`` turns per-example rows into metrics.
Every module imports torch and captum inside functions only.
"""
