"""Paired and two-sample tests whose size holds at every n, and the intervals the gate reports.

Each test here is exact or a Monte Carlo version of an exact randomization test, so its type-I
error is at most alpha at n = 5 as at n = 5,000 (simulated in tests/test_gate_simulation.py and
benchmarks/bench_gate_statistics.py):

* 0/1 outcomes per example (correct, attack succeeded, prediction flipped): exact McNemar on
  the discordant pairs (``harness.stats.mcnemar_exact``) and Tango's score interval for the
  paired difference of proportions (Tango 1998, Stat Med 17:891), which stays honest when few
  or no pairs are discordant;
* continuous values per example: the sign-flip permutation test of the mean difference (exact
  enumeration up to 2^16 sign patterns) and the Student-t interval;
* statistics that do not decompose per example (macro-F1, ECE): the paired approximate
  randomization test (Noreen 1989; swap the two systems' outputs per example), exact when few
  examples differ;
* independent samples (latency calls of two runs): a two-sample permutation test of any
  statistic (a quantile), with a percentile-bootstrap interval of the difference.

Monte Carlo p-values count the observed arrangement as one of the draws, ``(1 + hits) / (1 +
draws)``, which keeps them valid (never below the exact p-value in expectation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from harness.stats import Interval

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# Ties between a permuted statistic and the observed one are decided with this slack: sums of
# the same floats in another order differ in the last bits.
TIE = 1e-12
EXACT_SIGN_FLIPS = 16  # enumerate every sign pattern up to 2^16 = 65,536 of them
EXACT_SWAPS = 12  # non-additive statistics cost one evaluation per pattern: 4,096 at most
PERMUTATION_CHUNK = 256


def min_informative(alpha: float) -> int:
    """Smallest number of informative pairs at which an exact two-sided paired test can reach
    ``p < alpha``: every informative pair moving the same way gives ``p = 2 * 0.5**m``."""
    m = 1
    while 2.0 * 0.5**m >= alpha:
        m += 1
    return m


# ------------------------------------------------------------------ 0/1 outcomes


def tango_interval(up: int, down: int, n: int, *, confidence: float = 0.95) -> Interval:
    """Tango's score interval for ``(up - down) / n``, the paired difference of proportions.

    ``up`` counts pairs where only the second system has the outcome, ``down`` where only the
    first has it. The interval inverts the score test of H0: difference = d0, whose variance uses
    the maximum-likelihood cell probabilities restricted to H0, so it does not collapse to a
    point when no pair is discordant (a Wald interval would).
    """
    method = "Tango score interval (paired proportions)"
    if n <= 0:
        return Interval(None, None, method)
    from scipy.optimize import brentq
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    estimate = (up - down) / n
    edge = 1.0 - 1e-12
    # The score is 0 at the estimate and decreases in d0: each end is where it crosses -+z,
    # or the edge of [-1, 1] when it never does.
    if _tango_score(up, down, n, -edge) <= z:
        low = -1.0
    else:
        low = float(brentq(lambda d0: _tango_score(up, down, n, d0) - z, -edge, estimate, xtol=1e-12))
    if _tango_score(up, down, n, edge) >= -z:
        high = 1.0
    else:
        high = float(brentq(lambda d0: _tango_score(up, down, n, d0) + z, estimate, edge, xtol=1e-12))
    return Interval(min(low, estimate), max(high, estimate), method)


def _tango_score(up: int, down: int, n: int, d0: float) -> float:
    """The score statistic of H0: (p_up - p_down) = d0; decreasing in d0."""
    # Restricted MLE of p_down under H0 (the root of the likelihood equation, Tango 1998 eq. 3).
    w = -up - down + (2 * n - up + down) * d0
    p_down = (math.sqrt(max(w * w + 8.0 * n * down * d0 * (1 - d0), 0.0)) - w) / (4.0 * n)
    var = n * (2.0 * p_down + d0 * (1.0 - d0))
    diff = up - down - n * d0
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def mcnemar_power(n: int, p_up: float, p_down: float, *, alpha: float) -> float:
    """Exact power of the two-sided exact McNemar test at level ``alpha`` with ``n`` pairs.

    Sums over the number of discordant pairs D ~ Binomial(n, p_up + p_down) the probability
    that the split of D falls in the test's rejection region.
    """
    from scipy.stats import binom

    psi = p_up + p_down
    if n <= 0 or psi <= 0:
        return 0.0
    psi = min(psi, 1.0)
    mean, sd = n * psi, math.sqrt(n * psi * (1 - psi))
    lo, hi = max(0, int(mean - 10 * sd - 10)), min(n, int(mean + 10 * sd + 10))
    d = np.arange(lo, hi + 1)
    weight = binom.pmf(d, n, psi)
    # Largest k with P(Bin(d, 1/2) <= k) < alpha/2: reject when min(up, down) <= k.
    k = binom.ppf(alpha / 2, d, 0.5) - 1
    k = np.where(binom.cdf(k + 1, d, 0.5) < alpha / 2, k + 1, k)
    share = p_up / psi
    reject = np.where(
        k >= 0, binom.cdf(k, d, share) + binom.sf(d - k - 1, d, share), 0.0
    )
    return float(np.sum(weight * reject))


def mcnemar_mde(n: int, discordance: float, *, alpha: float, power: float = 0.8) -> float | None:
    """Smallest change in a paired proportion the exact McNemar test detects with ``power``.

    The discordance (share of pairs whose outcomes differ) is the observed one, raised to the
    change itself where that is larger (a change of d needs at least a share d of discordant
    pairs). None when no change up to 1 can be detected at this n.
    """

    def power_at(delta: float) -> float:
        psi = min(1.0, max(discordance, delta))
        return mcnemar_power(n, (psi + delta) / 2, (psi - delta) / 2, alpha=alpha)

    if n <= 0 or power_at(1.0) < power:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
    return hi


# ------------------------------------------------------------------ continuous values


def sign_flip_test(
    diffs: FloatArray, *, n_perm: int = 2000, seed: int = 0
) -> tuple[float, str]:
    """Two-sided sign-flip permutation p-value for "the mean paired difference is 0".

    Exact (every sign pattern of the non-zero differences) up to 2^16 patterns, else Monte Carlo.
    """
    d = np.asarray(diffs, dtype=np.float64)
    d = d[d != 0]
    m = int(d.size)
    if m == 0:
        return 1.0, "sign-flip permutation (exact)"
    observed = abs(float(d.sum()))
    slack = TIE * max(1.0, float(np.abs(d).sum()))
    if m <= EXACT_SIGN_FLIPS:
        patterns = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2 - 1
        sums = np.abs(patterns @ d)
        return float(np.mean(sums >= observed - slack)), "sign-flip permutation (exact)"
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, PERMUTATION_CHUNK):
        size = min(PERMUTATION_CHUNK, n_perm - start)
        signs = rng.integers(0, 2, size=(size, m)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= observed - slack))
    return (hits + 1) / (n_perm + 1), f"sign-flip permutation ({n_perm} draws)"


def t_interval(diffs: FloatArray, *, confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of paired differences; None when they do not vary."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2 or float(d.std(ddof=1)) == 0.0:
        return Interval(None, None, "student-t")
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, d.size - 1)) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return Interval(float(d.mean()) - half, float(d.mean()) + half, "student-t")


def t_mde(n: int, sd: float, *, alpha: float, power: float = 0.8) -> float | None:
    """Smallest mean difference the two-sided paired t-test detects with ``power`` (noncentral t)."""
    if n < 2 or not sd > 0:
        return None
    from scipy.optimize import brentq
    from scipy.stats import t

    crit = float(t.ppf(1 - alpha / 2, n - 1))

    def shortfall(effect: float) -> float:
        return t_power(crit, n - 1, effect * math.sqrt(n)) - power

    hi = 1.0
    while shortfall(hi) < 0:
        hi *= 2
    return float(brentq(shortfall, 0.0, hi, xtol=1e-10)) * sd


def t_power(crit: float, df: float, nc: float) -> float:
    """P(|T| > crit) for T noncentral t; the far tail is dropped where scipy returns NaN (it is
    below 1e-30 there)."""
    from scipy.stats import nct

    upper = float(nct.sf(crit, df, nc))
    lower = float(nct.cdf(-crit, df, nc))
    return (upper if math.isfinite(upper) else 0.0) + (lower if math.isfinite(lower) else 0.0)


# ------------------------------------------------------------------ non-additive statistics


SwapStatistic = Callable[[BoolArray], FloatArray]


def swap_test(
    statistic: SwapStatistic,
    informative: npt.NDArray[np.int64],
    n: int,
    *,
    n_perm: int = 2000,
    seed: int = 0,
) -> tuple[float, FloatArray, str]:
    """Paired approximate randomization: swap the two systems' outputs on random examples.

    ``statistic(mask)`` takes a (draws, n) boolean array (True = swapped) and returns the
    difference (second − first) for each row; only the ``informative`` examples (where the two
    outputs differ) are ever swapped, since swapping equal outputs changes nothing. Returns the
    two-sided p-value, the null draws (for the power estimate) and the method.
    """
    m = int(informative.size)
    observed = float(statistic(np.zeros((1, n), dtype=bool))[0])
    if m == 0:
        return 1.0, np.zeros(1), "paired randomization (exact)"
    if m <= EXACT_SWAPS:
        bits = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1).astype(bool)
        mask = np.zeros((2**m, n), dtype=bool)
        mask[:, informative] = bits
        null = statistic(mask)
        slack = TIE * max(1.0, abs(observed))
        return float(np.mean(np.abs(null) >= abs(observed) - slack)), null, "paired randomization (exact)"
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n_perm, PERMUTATION_CHUNK):
        size = min(PERMUTATION_CHUNK, n_perm - start)
        mask = np.zeros((size, n), dtype=bool)
        mask[:, informative] = rng.integers(0, 2, size=(size, m)).astype(bool)
        chunks.append(statistic(mask))
    null = np.concatenate(chunks)
    slack = TIE * max(1.0, abs(observed))
    hits = int(np.sum(np.abs(null) >= abs(observed) - slack))
    return (hits + 1) / (n_perm + 1), null, f"paired randomization ({n_perm} draws)"


def normal_mde(null_sd: float, *, alpha: float, power: float = 0.8) -> float | None:
    """(z_{1-alpha/2} + z_power) * sd: the change a test with this null spread detects."""
    if not null_sd > 0:
        return None
    from scipy.stats import norm

    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * null_sd)


# ------------------------------------------------------------------ independent samples


def two_sample_permutation_test(
    first: FloatArray,
    second: FloatArray,
    statistic: Callable[[FloatArray], FloatArray],
    *,
    n_perm: int = 2000,
    seed: int = 0,
) -> tuple[float, FloatArray, str]:
    """Two-sided permutation p-value for ``statistic(second) - statistic(first)``.

    ``statistic`` reduces along the last axis (e.g. a quantile). Exact under H0 "both samples
    come from one distribution", at any sample size. Returns p, the null draws and the method.
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    pooled = np.concatenate([a, b])
    observed = float(statistic(b[None, :])[0] - statistic(a[None, :])[0])
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n_perm, PERMUTATION_CHUNK):
        size = min(PERMUTATION_CHUNK, n_perm - start)
        order = np.argsort(rng.random((size, pooled.size)), axis=1)
        shuffled = pooled[order]
        chunks.append(statistic(shuffled[:, a.size :]) - statistic(shuffled[:, : a.size]))
    null = np.concatenate(chunks)
    slack = TIE * max(1.0, abs(observed))
    hits = int(np.sum(np.abs(null) >= abs(observed) - slack))
    return (hits + 1) / (n_perm + 1), null, f"two-sample permutation ({n_perm} draws)"


def two_sample_bootstrap_interval(
    first: FloatArray,
    second: FloatArray,
    statistic: Callable[[FloatArray], FloatArray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(second) - statistic(first)``."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_boot, PERMUTATION_CHUNK):
        size = min(PERMUTATION_CHUNK, n_boot - start)
        ra = a[rng.integers(0, a.size, size=(size, a.size))]
        rb = b[rng.integers(0, b.size, size=(size, b.size))]
        draws.append(statistic(rb) - statistic(ra))
    values = np.concatenate(draws)
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(float(low), float(high), f"two-sample percentile bootstrap (n_boot={n_boot})")
