"""The parts the ``data`` suite composes: what the evaluation data is worth.

``normalise`` (duplicate keys and shingles), ``contamination`` (exact and MinHash-LSH near
duplicates of seen texts), ``integrity`` (duplicates, label conflicts, balance, lengths, scripts),
``label_issues`` (cleanlab), ``embed`` (sentence embeddings from the model's encoder), ``shift``
(MMD permutation test and per-feature shifts) and ``slices`` (weak slices searched on one half of
the split, confirmed on the other, Benjamini–Hochberg). Each takes plain values and returns a
result with its metrics; none imports a suite. Named ``data_checks`` because the core already
has ``harness.data`` (the Dataset type and loaders).
"""
