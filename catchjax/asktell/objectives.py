"""Ask/tell searches with several objectives (issue 35): a tell carries one value per
objective (accuracy and latency of a trained network, say) instead of one reward.

The method still learns one reward. Each told value is scaled to [0, 1] over its
objective's declared range (minimized: a maximized objective is flipped), and the scaled
values are scalarized by ParEGO's augmented Chebyshev function
(:func:`catchjax.benchmarks.tasks.chebyshev`) under the search's weight vector: the one
trial ``trial`` of a multi-objective sweep with the same seed draws
(:func:`catchjax.runs.sweeps.trial_weights`). So an ask/tell search told a table's values,
with the table's ranges declared, is that trial of the sweep; several searches with other
trial numbers aim at other parts of the front. The told values are kept with each
proposal, and :func:`front` gives the search's nondominated proposals.

The ranges are declared because the scalarization needs the objectives on one scale
before the first result arrives; a value outside its range is used as it is (scaled
below 0 or above 1), never clipped.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import jax.numpy as jnp
import numpy as np

from catchjax.asktell import checks
from catchjax.benchmarks import pareto, tasks
from catchjax.errors import CatchjaxError
from catchjax.runs import numerics
from catchjax.runs.sweeps import trial_weights

# a results CSV names its objective columns; these names mean something else there
_RESERVED = ("id", "arch", "reward")


@dataclasses.dataclass(frozen=True)
class Objective:
    """One objective of an ask/tell search: its ``name``, ``"max"`` or ``"min"``, and the
    range ``[low, high]`` its told values are scaled over."""

    name: str
    direction: str
    low: float
    high: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def parse_objective(text: str) -> Objective:
    """``NAME:max:LOW:HIGH`` or ``NAME:min:LOW:HIGH`` (the command line's ``--objective``)."""
    parts = str(text).split(":")
    if len(parts) != 4:
        raise CatchjaxError(f"an ask/tell objective is NAME:max:LOW:HIGH or NAME:min:LOW:HIGH "
                            f"(e.g. accuracy:max:0:100, latency_ms:min:0:50), got {text!r}")
    try:
        low, high = float(parts[2]), float(parts[3])
    except ValueError:
        raise CatchjaxError(f"objective {text!r}: LOW and HIGH must be numbers") from None
    return _checked(Objective(parts[0].strip(), parts[1].strip(), low, high))


def _checked(o: Objective) -> Objective:
    if not isinstance(o.name, str) or not o.name.strip() or o.name in _RESERVED:
        raise CatchjaxError(f"an objective needs a name other than {', '.join(_RESERVED)} "
                            f"(it names a column of the results), got {o.name!r}")
    if o.direction not in ("max", "min"):
        raise CatchjaxError(f"objective {o.name!r}: the direction is 'max' or 'min', got "
                            f"{o.direction!r}")
    for bound in (o.low, o.high):
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real) \
                or not math.isfinite(bound):
            raise CatchjaxError(f"objective {o.name!r}: low and high must be finite numbers, "
                                f"got {o.low!r} and {o.high!r}")
    if not o.low < o.high:
        raise CatchjaxError(f"objective {o.name!r}: low ({o.low}) must be below high "
                            f"({o.high}); they are the range its values are scaled over")
    return Objective(o.name, o.direction, float(o.low), float(o.high))


def check_objectives(objectives) -> tuple[Objective, ...]:
    """The objectives of a search as :class:`Objective` s: given as such, as
    ``NAME:max:LOW:HIGH`` texts, as ``(name, direction, low, high)`` or as dicts with
    those keys. None or empty: a search with one reward."""
    if objectives is None:
        return ()
    if isinstance(objectives, (str, bytes, dict)) or not hasattr(objectives, "__iter__"):
        raise CatchjaxError(f"objectives must be a list (e.g. ['accuracy:max:0:100', "
                            f"'latency_ms:min:0:50']), got {objectives!r}")
    out = []
    for o in objectives:
        if isinstance(o, str):
            out.append(parse_objective(o))
        elif isinstance(o, dict):
            out.append(_checked(Objective(**{k: o.get(k) for k in
                                             ("name", "direction", "low", "high")})))
        elif isinstance(o, (tuple, list)) and len(o) == 4:
            out.append(_checked(Objective(*o)))
        elif isinstance(o, Objective):
            out.append(_checked(o))
        else:
            raise CatchjaxError(f"an objective is NAME:max:LOW:HIGH, (name, direction, low, "
                                f"high) or an Objective, got {o!r}")
    if not out:
        return ()
    if len(out) < 2:
        raise CatchjaxError("a search with objectives needs at least two (one objective: "
                            "tell it as the reward)")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise CatchjaxError(f"objective names must differ, got {names}")
    return tuple(out)


def of_trial(objectives, seed: int, trial: int) -> tuple[tuple[Objective, ...], tuple]:
    """(the objectives checked, the weight vector of trial ``trial``; both empty without
    objectives)."""
    objs = check_objectives(objectives)
    return objs, (weights_of(seed, trial, len(objs)) if objs else ())


@functools.cache
def _weights_fn():
    return numerics.jit(trial_weights, static_argnums=2)  # compiled once per process


def weights_of(seed: int, trial: int, n: int) -> tuple[float, ...]:
    """The weight vector of trial ``trial`` of a sweep with ``seed`` (as that sweep
    computes it: in one compiled call)."""
    w = _weights_fn()(seed, trial, n)
    return tuple(float(x) for x in np.asarray(w, np.float32))


def values_of(objectives, results) -> np.ndarray:
    """f64 [n, d]: one value per objective for each result, a dict ``{name: value}`` or a
    sequence in the objectives' order; every value checked as a reward is."""
    names = [o.name for o in objectives]
    out = []
    for n, result in enumerate(results):
        if isinstance(result, dict):
            if set(result) != set(names):
                raise CatchjaxError(f"result {n}: the values of {sorted(result)}, but the "
                                    f"search's objectives are {names}")
            result = [result[k] for k in names]
        elif isinstance(result, (str, bytes)) or not hasattr(result, "__len__") \
                or len(result) != len(names):
            raise CatchjaxError(f"result {n}: one value per objective ({', '.join(names)}) "
                                f"is needed, as a list or a dict, got {result!r}")
        out.append([checks.reward_value(v, f"result {n}, objective {k!r}")
                    for k, v in zip(names, result)])
    return np.asarray(out, np.float64).reshape(len(out), len(names))


def scaled(objectives, values) -> np.ndarray:
    """f32 [n, d]: the values minimized and scaled to [0, 1] over the declared ranges (as
    a table task scales its columns over their range)."""
    directions = [o.direction for o in objectives]
    bounds = pareto.as_minimization([[o.low for o in objectives],
                                     [o.high for o in objectives]], directions)
    lo, hi = bounds.min(axis=0), bounds.max(axis=0)
    return np.asarray((pareto.as_minimization(values, directions) - lo) / (hi - lo),
                      np.float32)


def rewards(objectives, weights, values) -> list[float]:
    """The rewards the method learns from the told ``values`` [n, d]."""
    r = tasks.chebyshev(jnp.asarray(scaled(objectives, values)),
                        jnp.asarray(weights, jnp.float32))
    return [float(x) for x in np.asarray(r)]


def front(log: list, objectives) -> list[dict]:
    """The told proposals of ``log`` whose values no other told proposal dominates."""
    told = [p for p in log if p.get("values") is not None]
    if not told:
        return []
    values = np.array([[p["values"][o.name] for o in objectives] for p in told])
    keep = pareto.front_rows(values, [o.direction for o in objectives])
    return [told[i] for i in keep]
