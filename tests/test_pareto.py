"""catchjax.benchmarks.pareto: fronts, hypervolume and the epsilon indicator, checked
against brute force and against moocore (a well-kept reference library)."""

from __future__ import annotations

import numpy as np
import pytest

from catchjax.benchmarks import pareto
from catchjax.errors import CatchjaxError


def _brute_nondominated(p):
    le = np.all(p[None, :, :] <= p[:, None, :], axis=2)
    lt = np.any(p[None, :, :] < p[:, None, :], axis=2)
    return ~np.any(le & lt, axis=1)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_the_front_is_the_definition_by_brute_force(d):
    rng = np.random.default_rng(d)
    for _ in range(20):
        # integer values make ties and duplicate points common
        p = rng.integers(0, 6, size=(int(rng.integers(1, 80)), d)).astype(float)
        np.testing.assert_array_equal(pareto.nondominated(p), _brute_nondominated(p))


def test_front_rows_of_a_small_table_under_mixed_directions():
    # accuracy (max) against latency (min) on a brute-force-checked table
    rng = np.random.default_rng(0)
    acc, lat = rng.normal(70, 3, 500), rng.gamma(3.0, 2.0, 500)
    rows = pareto.front_rows(np.stack([acc, lat], 1), ("max", "min"))
    want = np.flatnonzero(_brute_nondominated(np.stack([-acc, lat], 1)))
    np.testing.assert_array_equal(rows, want)
    assert rows[np.argmax(acc[rows])] == np.argmax(acc)  # the most accurate is on the front
    assert rows[np.argmin(lat[rows])] == np.argmin(lat)


@pytest.mark.parametrize("d", [2, 3])
def test_hypervolume_and_epsilon_agree_with_moocore(d):
    moocore = pytest.importorskip("moocore", reason="moocore (the reference library) is in "
                                  "the test extra: pip install -e '.[test]'")
    rng = np.random.default_rng(10 + d)
    for trial in range(25):
        n = int(rng.integers(1, 60))
        pts = rng.random((n, d))
        if trial % 3 == 0:  # points on a front, some beyond the reference point
            pts = pts[pareto.nondominated(pts)] * 1.2
        ref = np.ones(d)
        assert pareto.hypervolume(pts, ref) == pytest.approx(
            moocore.hypervolume(pts, ref=ref), abs=1e-9, rel=1e-12)
        reference = rng.random((int(rng.integers(1, 20)), d))
        assert pareto.additive_epsilon(pts, reference) == pytest.approx(
            moocore.epsilon_additive(pts, ref=reference), abs=1e-9)
        np.testing.assert_array_equal(pareto.nondominated(pts), moocore.is_nondominated(
            pts, keep_weakly=True))


def test_hypervolume_of_boxes_by_hand():
    assert pareto.hypervolume([[0.0, 0.0]], [1.0, 1.0]) == 1.0
    assert pareto.hypervolume([[0.5, 0.0], [0.0, 0.5]], [1.0, 1.0]) == 0.75
    assert pareto.hypervolume([[0.5, 0.5, 0.5]], [1.0, 1.0, 1.0]) == 0.125
    assert pareto.hypervolume([[1.0, 0.0]], [1.0, 1.0]) == 0.0  # on the reference: nothing
    assert pareto.additive_epsilon([[0.0, 0.0]], [[0.5, 0.5]]) == -0.5
    assert pareto.additive_epsilon([[1.0, 0.0]], [[0.0, 1.0]]) == 1.0
    assert pareto.fraction_found([3, 5, 9], [5, 7]) == 0.5


def test_bad_points_and_directions_are_named():
    with pytest.raises(CatchjaxError, match="NaN or infinite"):
        pareto.nondominated([[0.0, np.nan]])
    with pytest.raises(CatchjaxError, match="'max' or 'min'"):
        pareto.as_minimization([[1.0, 2.0]], ("max", "down"))
    with pytest.raises(CatchjaxError, match="one column per objective"):
        pareto.as_minimization([[1.0, 2.0]], ("max",))
    with pytest.raises(CatchjaxError, match="2 or 3 objectives"):
        pareto.hypervolume(np.zeros((2, 4)), np.ones(4))
    with pytest.raises(CatchjaxError, match="reference point"):
        pareto.hypervolume(np.zeros((2, 2)), [1.0, np.inf])


def test_search_measures_follow_the_evaluations_and_pool_the_trials():
    rng = np.random.default_rng(3)
    points = np.stack([rng.random(300), rng.random(300)], 1)
    front = np.flatnonzero(pareto.nondominated(points))
    points = pareto.normalize_to_front(points, points[front])
    np.testing.assert_allclose(points[front].min(axis=0), 0)
    np.testing.assert_allclose(points[front].max(axis=0), 1)
    ref = np.full(2, pareto.REFERENCE)
    others = np.setdiff1d(np.arange(300), front)
    rows = np.stack([np.concatenate([others[:5], front]),  # finds the whole front, late
                     others[5:5 + len(front) + 5]])  # never touches it
    m = pareto.search_measures(rows, points, front, ref)
    assert m["hv_ratio"].shape == rows.shape
    assert np.all(np.diff(m["hv_ratio"], axis=1) >= 0)  # never falls as a search goes on
    assert m["hv_ratio"][0, -1] == pytest.approx(1.0) and m["hv_ratio"][1, -1] < 1.0
    np.testing.assert_allclose(m["fraction_found"], [1.0, 0.0])
    assert m["epsilon"][0] == 0.0 and m["epsilon"][1] > 0
    assert m["union_fraction_found"] == 1.0 and m["union_hv_ratio"] == pytest.approx(1.0)
