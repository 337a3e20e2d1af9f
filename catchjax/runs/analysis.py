"""Statistics of sweep results: best-so-far traces, bootstrap CIs, exact random-search
expectations (used to check the samplers against the table)."""

from __future__ import annotations

import numpy as np


def best_so_far(rewards: np.ndarray) -> np.ndarray:
    """Index of the best reward among steps 0..t, per trial and step (``[T, B]``).

    Ties keep the earliest step, so which of several equal-reward architectures is
    chosen depends only on the (random) order in which they were found.
    """
    rewards = np.asarray(rewards)
    out = np.zeros(rewards.shape, dtype=np.int32)
    best = rewards[:, 0].copy()
    cur = np.zeros(len(rewards), dtype=np.int32)
    for t in range(1, rewards.shape[1]):
        better = rewards[:, t] > best
        cur = np.where(better, t, cur)
        best = np.where(better, rewards[:, t], best)
        out[:, t] = cur
    return out


BOOTSTRAP_RESAMPLES = 10_000
# Above this many values the CI is the normal interval of the mean: the percentile
# bootstrap converges to it (at 100,000 normal draws the two ends differ by 0.1% of the
# interval's width) and would take ~10 s per 100,000 values; the closed form takes
# constant memory at any trial count.
BOOTSTRAP_MAX_VALUES = 100_000
# resampled indices held at once: 64 MiB of int64 however many values (scipy draws the
# same indices in batches as in one array, so the interval is the same bits)
_BATCH_ELEMENTS = 1 << 23


def ci_method(n: int) -> str:
    """How :func:`bootstrap_ci` computes the interval of ``n`` values (for summaries)."""
    if n > BOOTSTRAP_MAX_VALUES:
        return f"normal approximation (more than {BOOTSTRAP_MAX_VALUES:,} values)"
    return f"percentile bootstrap of the mean, {BOOTSTRAP_RESAMPLES:,} resamples"


def bootstrap_ci(values: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (10,000 resamples, seeded), in bounded memory;
    the normal interval above :data:`BOOTSTRAP_MAX_VALUES` values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or np.all(values == values[0]):
        m = float(values.mean())
        return (m, m)
    from scipy import stats  # imported here: the CLI starts without it

    if len(values) > BOOTSTRAP_MAX_VALUES:
        half = float(stats.norm.ppf(0.5 + level / 2) * values.std(ddof=1)
                     / np.sqrt(len(values)))
        m = float(values.mean())
        return (m - half, m + half)
    res = stats.bootstrap(
        (values,), np.mean, confidence_level=level, n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile", rng=np.random.default_rng(seed),
        batch=max(1, _BATCH_ELEMENTS // len(values)),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def random_search_expectation(reward: np.ndarray, report: np.ndarray, budget: int,
                              replace: bool = False) -> float:
    """Exact E[report of the best-by-reward of ``budget`` uniform draws].

    Architectures with equal reward form one group; the chosen one is uniform within the
    best group present, so it contributes the group's mean report. With ``n`` archs and
    groups sorted by reward, P(best group has rank <= i) is C(c_i, b) / C(n, b) without
    replacement and (c_i / n)^b with it, where c_i counts archs in groups up to i.
    """
    reward = np.asarray(reward, dtype=np.float64)
    report = np.asarray(report, dtype=np.float64)
    n = len(reward)
    values, inverse = np.unique(reward, return_inverse=True)
    counts = np.bincount(inverse)
    group_mean = np.bincount(inverse, weights=report) / counts
    cum = np.cumsum(counts).astype(np.float64)
    if replace:
        cdf = (cum / n) ** budget
    else:
        # log C(c, b) - log C(n, b), zero probability where c < b
        from scipy.special import gammaln

        def log_comb(a, b):
            return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

        with np.errstate(invalid="ignore"):
            cdf = np.where(cum >= budget, np.exp(log_comb(cum, budget) - log_comb(n, budget)), 0.0)
    pmf = np.diff(np.concatenate([[0.0], cdf]))
    return float(np.sum(pmf * group_mean))
