"""catchjax.runs.analysis: the statistics every summary carries, at any trial count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from catchjax.runs import analysis


def test_bootstrap_in_batches_is_scipys_bootstrap_bit_for_bit():
    """Bounded memory changes nothing: the batched resamples are the same draws."""
    values = np.random.default_rng(3).normal(90, 3, size=4000)
    whole = stats.bootstrap((values,), np.mean, n_resamples=10_000, method="percentile",
                            rng=np.random.default_rng(7)).confidence_interval
    assert analysis.bootstrap_ci(values, seed=7) == (whole.low, whole.high)
    assert analysis.ci_method(4000).startswith("percentile bootstrap")


def test_many_trials_get_the_normal_interval_close_to_the_bootstrap(monkeypatch):
    values = np.random.default_rng(4).exponential(size=3000)  # skewed, like regrets
    boot = analysis.bootstrap_ci(values, seed=0)
    monkeypatch.setattr(analysis, "BOOTSTRAP_MAX_VALUES", 2000)
    normal = analysis.bootstrap_ci(values, seed=0)
    width = boot[1] - boot[0]
    assert abs(normal[0] - boot[0]) < 0.05 * width and abs(normal[1] - boot[1]) < 0.05 * width
    assert analysis.ci_method(3000).startswith("normal approximation")
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert normal[1] - normal[0] == pytest.approx(2 * 1.959964 * se, rel=1e-6)


def test_a_million_trials_need_no_resampling():
    """10,000 resamples of 10^6 indices were 74.5 GiB (a MemoryError after the sweep)."""
    values = np.random.default_rng(5).normal(size=1_000_000)
    lo, hi = analysis.bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 0.01


def test_degenerate_values_give_a_point_interval():
    assert analysis.bootstrap_ci(np.array([2.5])) == (2.5, 2.5)
    assert analysis.bootstrap_ci(np.full(10, 7.0)) == (7.0, 7.0)


def test_best_so_far_keeps_the_earliest_of_equal_rewards():
    r = np.array([[1.0, 3.0, 3.0, 2.0, 5.0]])
    np.testing.assert_array_equal(analysis.best_so_far(r), [[0, 1, 1, 1, 4]])
