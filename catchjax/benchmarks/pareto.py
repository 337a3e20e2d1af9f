"""Pareto fronts and the measures of how much of one a search found (issue 35), on the host.

Every function takes points ``[n, d]`` to be **minimized** in every column; objectives to
be maximized are negated first (:func:`as_minimization`). On a table the true front is
known exactly (:func:`front_rows`), so a search's found front can be measured against it:

* :func:`hypervolume`: the volume dominated by the points and bounded by a reference
  point, exact in 2-D (a sweep) and 3-D (slices, each a 2-D sweep);
* :func:`additive_epsilon`: the smallest shift by which the found points weakly dominate
  every point of the reference front (Zitzler et al. 2003's additive epsilon indicator);
* :func:`fraction_found`: the share of the true front's networks among those found.
"""

from __future__ import annotations

import numpy as np

from catchjax.errors import CatchjaxError

DIRECTIONS = ("max", "min")
_BLOCK = 2048  # rows compared at once in the d >= 3 dominance test (memory ~ BLOCK * n * d)


def as_minimization(values, directions) -> np.ndarray:
    """``values`` [n, d] with the columns whose direction is ``"max"`` negated."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise CatchjaxError(f"objective values have shape {values.shape}; expected "
                            f"[n, {len(directions)}] (one column per objective)")
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise CatchjaxError(f"an objective's direction is 'max' or 'min', got {bad[0]!r}")
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return values * sign


def _check(points) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.ndim != 2:
        raise CatchjaxError(f"points must be [n, d], got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise CatchjaxError("points hold NaN or infinite values: a front is defined over "
                            "finite objective values only (mask the rows first)")
    return points


def nondominated(points) -> np.ndarray:
    """bool [n]: the points no other point dominates (at least as good in every objective,
    better in one). Equal points do not dominate each other: both are kept."""
    p = _check(points)
    n, d = p.shape
    if n == 0:
        return np.zeros(0, bool)
    if d == 1:
        return p[:, 0] == p[:, 0].min()
    if d == 2:
        # in (first, second) order every dominator of a point comes before it: the point is
        # dominated iff an earlier one has a smaller second objective, or the same second
        # objective with a smaller first (equal points stay)
        keep = np.ones(n, bool)
        best_y = best_x = np.inf
        for k in np.lexsort((p[:, 1], p[:, 0])):
            x, y = p[k]
            if y > best_y or (y == best_y and best_x < x):
                keep[k] = False
            elif y < best_y:
                best_y, best_x = y, x
        return keep
    keep = np.ones(n, bool)
    for start in range(0, n, _BLOCK):
        block = p[start:start + _BLOCK]
        le = np.all(p[None, :, :] <= block[:, None, :], axis=2)
        lt = np.any(p[None, :, :] < block[:, None, :], axis=2)
        keep[start:start + _BLOCK] = ~np.any(le & lt, axis=1)
    return keep


def front_rows(values, directions, rows=None) -> np.ndarray:
    """The rows (indices into ``values``, or into ``rows`` where given) of the Pareto front
    of ``values`` [n, d] under ``directions``."""
    keep = nondominated(as_minimization(values, directions))
    idx = np.flatnonzero(keep)
    return idx if rows is None else np.asarray(rows)[idx]


def _hv2(p: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume of points strictly better than ``ref`` in both objectives: in order
    of the first objective, each point adds the strip between its second objective and
    the best second objective before it (vectorized: one sort, one running minimum)."""
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    best = np.minimum.accumulate(p[:, 1])
    before = np.concatenate([[ref[1]], best[:-1]])
    return float(np.sum((ref[0] - p[:, 0]) * np.maximum(before - best, 0.0)))


def hypervolume(points, ref) -> float:
    """The volume dominated by ``points`` [n, d] (minimized) and dominating ``ref`` [d];
    points not strictly better than ``ref`` in every objective add nothing. Exact for
    d = 2 and d = 3."""
    p = _check(points)
    ref = np.asarray(ref, np.float64)
    if ref.shape != (p.shape[1],) or not np.all(np.isfinite(ref)):
        raise CatchjaxError(f"the reference point must be {p.shape[1]} finite values, got "
                            f"{ref.tolist()}")
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 2:
        return _hv2(p, ref)
    if p.shape[1] == 3:
        # slices between consecutive third coordinates: each is the 2-D volume of the points
        # at or below the slice's bottom, times its thickness
        p = p[np.argsort(p[:, 2], kind="stable")]
        zs = np.append(p[:, 2], ref[2])
        volume = 0.0
        for i in range(len(p)):
            thickness = zs[i + 1] - zs[i]
            if thickness > 0:
                volume += _hv2(p[:i + 1, :2], ref[:2]) * thickness
        return volume
    raise CatchjaxError(f"hypervolume is exact for 2 or 3 objectives; got {p.shape[1]}")


def additive_epsilon(found, reference) -> float:
    """The smallest eps such that every reference point is weakly dominated by a found
    point shifted by eps (all minimized): max over reference points of the min over found
    points of max_i (found_i - ref_i). 0 when the found points cover the reference front."""
    a, r = _check(found), _check(reference)
    if len(a) == 0:
        return float("inf")
    gaps = np.max(a[None, :, :] - r[:, None, :], axis=2)  # [n_ref, n_found]
    return float(np.max(np.min(gaps, axis=1)))


def fraction_found(found_rows, front) -> float:
    """The share of the true front's rows among ``found_rows``."""
    front = np.unique(np.asarray(front))
    if len(front) == 0:
        raise CatchjaxError("the true front is empty")
    return float(np.isin(front, np.asarray(found_rows)).mean())


def normalize_to_front(points, front_points) -> np.ndarray:
    """``points`` (minimized) scaled so that the true front spans [0, 1] in every
    objective: 0 = the front's best value (ideal point), 1 = its worst (nadir point).
    Measures on these units weigh accuracy and latency alike, whatever their units."""
    p, f = _check(points), _check(front_points)
    ideal, nadir = f.min(axis=0), f.max(axis=0)
    return (p - ideal) / np.where(nadir > ideal, nadir - ideal, 1.0)


REFERENCE = 1.1  # the reference point in front-normalized units: the nadir plus 10%


def task_points(values, directions, front, inside) -> tuple[np.ndarray, np.ndarray]:
    """A table's objective values [n, d] as measured against its true front ``front``
    (rows): minimized, in :func:`normalize_to_front`'s units, with the rows outside the
    task (``inside`` False: never evaluated, their values maybe NaN or -1) at the
    reference point, where they add nothing. Returns (points, reference point)."""
    points = as_minimization(values, directions)
    outside = ~np.asarray(inside, bool)[:, None]
    points = np.where(outside, points[front].max(axis=0), points)
    points = normalize_to_front(points, points[front])
    ref = np.full(points.shape[1], REFERENCE)
    return np.where(outside, ref, points), ref


def search_measures(rows, points, front, ref, curve: bool = True) -> dict:
    """How much of the true front each search found, after every evaluation.

    ``rows`` [T, B]: the rows each of T searches evaluated, in order; ``points`` [n, d]:
    every row's objective values (minimized, e.g. :func:`normalize_to_front`'s units);
    ``front``: the true front's rows; ``ref``: the reference point. Returns ``hv_ratio``
    [T, B] (hypervolume of the first b evaluations over the true front's),
    ``fraction_found`` [T] and ``epsilon`` [T] (additive epsilon of each search's found
    points to the true front, after all B), and the same three for the union of all T
    searches (``union_*``, pooled as a sweep's trials are). ``curve=False``: ``hv_ratio``
    is [T, 1], after all B evaluations only (for very large sweeps)."""
    rows = np.asarray(rows)
    p = _check(points)
    front = np.asarray(front)
    true_hv = hypervolume(p[front], ref)
    if true_hv <= 0:
        raise CatchjaxError("the true front has no volume under the reference point")
    T, B = rows.shape
    steps = range(B) if curve else [B - 1]
    hv = np.zeros((T, len(steps)))
    eps, frac = np.zeros(T), np.zeros(T)
    for t in range(T):
        found = p[rows[t]]
        for j, b in enumerate(steps):
            hv[t, j] = hypervolume(found[:b + 1], ref) / true_hv
        eps[t] = additive_epsilon(found, p[front])
        frac[t] = fraction_found(rows[t], front)
    pooled = np.unique(rows)
    union = p[pooled][nondominated(p[pooled])]
    return {"hv_ratio": hv, "fraction_found": frac, "epsilon": eps,
            "union_hv_ratio": hypervolume(union, ref) / true_hv,
            "union_fraction_found": fraction_found(pooled, front),
            "union_epsilon": additive_epsilon(union, p[front])}
