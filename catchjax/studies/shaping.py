"""Reward shaping and task relations of the transfer study (paper 002 §3.1-3.2).

* :func:`normalize` maps a metric to [0, 1] before the gamma transform R' = R^gamma:
  ``percent`` divides by 100 (top-1 accuracy, mIoU, as the paper does), ``none`` keeps a
  metric already in [0, 1] (SSIM), ``minmax`` uses the table's range (metrics that can be
  negative, such as room_layout's ``neg_loss``: the worst architecture maps to 0, the
  best to 1). :data:`DEFAULT_NORMALIZE` says which one each TransNAS metric uses.
* :func:`spread_sweep`: the spread (standard deviation) of the transformed validation
  rewards for each gamma of a grid, and the gamma that maximizes it (paper Fig. 4:
  0.478 for segmentsemantic).
* :func:`kendall_matrix`: Kendall's tau between tasks' validation metrics over the
  architectures every task has (paper Fig. 1), with scipy.
"""

from __future__ import annotations

import numpy as np

from catchjax.errors import CatchjaxError

NORMALIZATIONS = ("percent", "none", "minmax")
# metric name (the part after "__valid_") -> how it reaches [0, 1]
DEFAULT_NORMALIZE = {"top1": "percent", "top5": "percent", "mIoU": "percent", "acc": "percent",
                     "ssim": "none", "neg_loss": "minmax"}


def default_normalization(column: str) -> str:
    metric = column.rsplit("_", 1)[-1] if "__" not in column else column.split("__", 1)[1]
    metric = metric.split("_", 1)[1] if metric.startswith(("valid_", "test_")) else metric
    return DEFAULT_NORMALIZE.get(metric, "minmax")


def normalize(values: np.ndarray, how: str, name: str = "the metric") -> np.ndarray:
    """``values`` mapped to [0, 1] by ``how``; refuses a result outside [0, 1]."""
    v = np.asarray(values, np.float64)
    if how == "percent":
        u = v / 100.0
    elif how == "none":
        u = v
    elif how == "minmax":
        lo, hi = np.nanmin(v), np.nanmax(v)
        u = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    else:
        raise CatchjaxError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                            f"got {how!r}")
    if np.nanmin(u) < 0 or np.nanmax(u) > 1:
        raise CatchjaxError(
            f"{name} lies in [{np.nanmin(v):.4g}, {np.nanmax(v):.4g}], which {how!r} does not "
            f"map into [0, 1] (min {np.nanmin(u):.4g}, max {np.nanmax(u):.4g}); use 'minmax'")
    return u


def check_gammas(gammas) -> np.ndarray:
    g = np.asarray(gammas, np.float64)
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise CatchjaxError("gamma values must be finite and > 0 (R' = R^gamma)")
    return g


def spread_sweep(values: np.ndarray, gammas, how: str = "percent", name: str = "the metric"):
    """(gammas, std of normalize(values)^gamma for each, the gamma of the largest std)."""
    g = check_gammas(gammas)
    u = normalize(values, how, name)
    u = u[np.isfinite(u)]
    spread = np.array([np.std(u**x) for x in g])
    return g, spread, float(g[int(np.argmax(spread))])


def kendall_matrix(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Kendall's tau-b between every pair of columns, over rows where all are finite."""
    from scipy import stats

    names = list(columns)
    data = np.stack([np.asarray(columns[n], np.float64) for n in names])
    keep = np.all(np.isfinite(data), axis=0)
    if keep.sum() < 2:
        raise CatchjaxError("fewer than two architectures have every task's metric")
    data = data[:, keep]
    out = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            out[i, j] = out[j, i] = stats.kendalltau(data[i], data[j]).statistic
    return out
