"""Tasks: what a search optimizes on a benchmark, as arrays a jitted search can gather from.

A task (SPEC §1) = benchmark + reward metric + report metrics + an optional reward
transform: the gamma transform R' = R^gamma of a normalized metric (second paper, §3.2),
and/or a latency-aware objective R = P(m) * (LAT(m) / T)^w (MnasNet-style, w = -0.05).
When both are set, the gamma transform is applied to P first.

A task with several **objectives** (issue 35: accuracy against latency or energy) keeps
each objective's searched column, minimized and scaled to [0, 1] over the searchable rows
(``TaskArrays.objectives``), and reports each objective's reported column; a sweep gives
each trial its own weights (:func:`scalarize`), and the table's true Pareto front of the
reported columns is :attr:`Task.front`.

On device a task is a :class:`TaskArrays` pytree; a query is one gather:
``reward[code_to_row[code]]``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp
import numpy as np
from flax import struct

from catchjax.benchmarks import spaces, tables
from catchjax.errors import CatchjaxError


@dataclasses.dataclass(frozen=True)
class CostObjective:
    """Latency-aware reward R = P * (metric / target)^weight, weight <= 0 (for P < 0 the
    exponent's sign flips, so that lower latency always raises R)."""

    metric: str
    target: float
    weight: float = -0.05


@dataclasses.dataclass(frozen=True)
class Objective:
    """One objective of a multi-objective task: searched on ``column``, reported on
    ``report`` (None: the same column), to be maximized (``"max"``) or minimized."""

    column: str
    direction: str
    report: str | None = None

    @property
    def reported(self) -> str:
        return self.report or self.column


def parse_objective(text: str) -> Objective:
    """``COLUMN:max`` or ``COLUMN:min`` (the command line's ``--objective``), optionally
    ``COLUMN:max:REPORTED_COLUMN``."""
    parts = str(text).split(":")
    if len(parts) not in (2, 3) or not parts[0] or parts[1] not in ("max", "min") \
            or (len(parts) == 3 and not parts[2]):
        raise CatchjaxError(f"an objective is COLUMN:max or COLUMN:min (optionally "
                            f"COLUMN:max:REPORTED_COLUMN), got {text!r}")
    return Objective(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    benchmark: str
    task: str
    reward_metric: str
    report_metrics: tuple[str, ...]
    gamma: float | None = None
    # How the reward metric is mapped to [0, 1] before the gamma transform: "percent"
    # divides by 100 (as the paper does for mIoU), "none" keeps it (SSIM), "minmax" uses
    # the table's range (negative metrics such as neg_loss).
    gamma_normalize: str = "minmax"
    cost: CostObjective | None = None
    mask_nan: bool = False  # search only the architectures whose reward is not NaN
    # the named protocol whose reward and report columns the task took (None: the
    # benchmark's default columns, or columns given by hand)
    protocol: str | None = None
    # several objectives (issue 35); empty: one objective, the reward
    objectives: tuple[Objective, ...] = ()


@struct.dataclass
class TaskArrays:
    """Everything a jitted search reads about a task. Rows outside the task are unreachable."""

    reward: jnp.ndarray  # f32 [n_archs]
    report: jnp.ndarray  # f32 [n_archs, n_report]
    code_to_row: jnp.ndarray  # i32 [K**L], -1 = not a searchable architecture
    row_actions: jnp.ndarray  # i32 [n_archs, L]
    prefix_mask: jnp.ndarray  # bool [L, K**(L-1), K], see spaces.prefix_masks
    neighbors: jnp.ndarray  # i32 [n_archs, L*(K-1)], -1 = none
    valid_rows: jnp.ndarray  # i32 [n_valid], the searchable rows
    # f32 [n_archs, d]: a multi-objective task's searched columns, minimized and scaled to
    # [0, 1] over the searchable rows (None: one objective)
    objectives: jnp.ndarray | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A task built on the host: its spec, its table and its device arrays."""

    spec: TaskSpec
    table: tables.Table
    arrays: TaskArrays
    searchable: np.ndarray  # bool [n_archs]

    @property
    def space(self) -> spaces.SearchSpace:
        return self.table.space

    @property
    def n_searchable(self) -> int:
        return int(self.searchable.sum())

    @functools.cached_property
    def front(self) -> np.ndarray:
        """A multi-objective task's true Pareto front: the searchable rows no other
        searchable row dominates in the reported columns (computed once)."""
        from catchjax.benchmarks import pareto

        if not self.spec.objectives:
            raise CatchjaxError("a front belongs to a task with several objectives")
        rows = np.flatnonzero(self.searchable)
        values = np.asarray(self.arrays.report, np.float64)[rows]
        return pareto.front_rows(values, [o.direction for o in self.spec.objectives], rows)

    @property
    def name(self) -> str:
        return f"{self.spec.benchmark}/{self.spec.task}"


def make_task(
    benchmark: str,
    task: str | None = None,
    *,
    reward: str | None = None,
    report: tuple[str, ...] | str | None = None,
    gamma: float | None = None,
    gamma_normalize: str = "minmax",
    cost: CostObjective | None = None,
    mask_nan: bool = False,
    table: tables.Table | None = None,
    protocol: str | None = None,
    objectives=None,
) -> Task:
    """Build a task. ``task`` picks the defaults, ``protocol`` the benchmark's named set of
    them (NB201: "nats", the default, or "catch-fig3"); ``reward``/``report`` override
    columns. ``objectives``: two or more :class:`Objective` (or ``"COLUMN:max"`` texts)
    for a multi-objective task; an objective on the task's reward column is reported on
    its first report column (accuracy searched on the 12-epoch validation, reported on
    the 200-epoch test), any other on its own column."""
    _check_task_arguments(reward, report, gamma, gamma_normalize, cost, mask_nan)
    info = tables.benchmark_info(benchmark)
    if protocol is not None and not isinstance(protocol, str):
        raise CatchjaxError(f"protocol must be a protocol name, got {protocol!r}")
    defaults = info.named_task(task, protocol)
    if defaults is None and (reward is None or report is None):
        raise CatchjaxError(
            f"name a task of {benchmark!r} ({', '.join(info.tasks)}) or give both a reward "
            f"and a report metric"
        )
    reward = reward or defaults.reward
    if isinstance(report, str):
        report = tuple(r for r in report.split(",") if r)
    report = tuple(report) if report else defaults.report
    objectives = _objectives(objectives, reward, report, gamma, cost)
    if objectives:
        reward, report = objectives[0].column, tuple(o.reported for o in objectives)
    spec = TaskSpec(
        benchmark, task or "custom", reward, report, gamma, gamma_normalize, cost, mask_nan,
        protocol, objectives,
    )
    return build_task(spec, table if table is not None else tables.load_table(benchmark))


def _objectives(objectives, reward, report, gamma, cost) -> tuple[Objective, ...]:
    """The objectives of a task as :class:`Objective` s, each with its reported column."""
    if objectives is None:
        return ()
    if isinstance(objectives, (str, bytes)) or not hasattr(objectives, "__iter__"):
        raise CatchjaxError(f"objectives must be a list (e.g. ['cifar100_valid_acc_12:max', "
                            f"'cifar100_edgegpu_latency:min']), got {objectives!r}")
    out = [o if isinstance(o, Objective) else parse_objective(o) for o in objectives]
    if len(out) < 2:
        raise CatchjaxError(f"a multi-objective task needs at least two objectives, got "
                            f"{len(out)}; for one, use the reward (--reward)")
    if len(out) > 3:
        raise CatchjaxError(f"at most three objectives (hypervolume is exact in 2-D and "
                            f"3-D), got {len(out)}")
    if len({o.column for o in out}) < len(out):
        raise CatchjaxError("an objective is given twice: "
                            + ", ".join(o.column for o in out))
    for o in out:
        if o.direction not in ("max", "min"):
            raise CatchjaxError(f"objective {o.column}: direction must be 'max' or 'min', "
                                f"got {o.direction!r}")
    if gamma is not None or cost is not None:
        raise CatchjaxError("objectives replace the reward: the gamma transform and the "
                            "latency-aware reward (cost) go with one objective")
    return tuple(o if o.report or o.column != reward else
                 dataclasses.replace(o, report=report[0]) for o in out)


HARDWARE_DEVICES = ("edgegpu", "edgetpu", "raspi4", "pixel3", "eyeriss", "fpga")
_HW_DATASET = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16"}


def hardware_objectives(benchmark: str, task: str | None, preset: str,
                        protocol: str | None = None) -> list[Objective]:
    """A named pair of objectives on NB201 (HW-NAS-Bench's columns): ``DEVICE-latency`` or
    ``DEVICE-energy`` = the task's reward (max) against that device's latency or energy
    on the task's dataset (min)."""
    device, _, metric = str(preset).partition("-")
    if device not in HARDWARE_DEVICES or metric not in ("latency", "energy"):
        raise CatchjaxError(f"--objectives is DEVICE-latency or DEVICE-energy, DEVICE one of "
                            f"{', '.join(HARDWARE_DEVICES)}; got {preset!r}")
    info = tables.benchmark_info(benchmark)
    if info.space is not spaces.NB201 or task not in _HW_DATASET:
        raise CatchjaxError(f"hardware presets are for NB201's tasks ({', '.join(_HW_DATASET)}"
                            f"), not {benchmark}/{task}; give --objective COLUMN:min instead")
    defaults = info.named_task(task, protocol)
    return [Objective(defaults.reward, "max"),
            Objective(f"{_HW_DATASET[task]}_{device}_{metric}", "min")]


def scalarize(arrays: TaskArrays, weights, rho: float = 0.05) -> TaskArrays:
    """The task with the reward of one weight vector [d] (ParEGO's augmented Chebyshev
    scalarization, Knowles 2006): R = -(max_j w_j o_j + rho * sum_j w_j o_j) over the
    minimized, [0, 1]-scaled objectives o, so each weight vector aims at another part of
    the front; unreachable rows stay -inf."""
    reward = chebyshev(arrays.objectives, weights, rho)
    return arrays.replace(reward=jnp.where(jnp.isfinite(arrays.reward), reward, -jnp.inf))


def chebyshev(objectives, weights, rho: float = 0.05):
    """f32 [n]: the augmented Chebyshev reward of :func:`scalarize` for minimized,
    [0, 1]-scaled ``objectives`` [n, d] under ``weights`` [d] (an ask/tell search with
    several objectives scalarizes its told values with the same function)."""
    weighted = weights[None, :] * objectives
    return -(jnp.max(weighted, axis=1) + rho * jnp.sum(weighted, axis=1))


def _check_task_arguments(reward, report, gamma, gamma_normalize, cost, mask_nan) -> None:
    """The Python API checks what the CLI checks: one error naming the argument."""
    import numbers

    if reward is not None and (not isinstance(reward, str) or not reward.strip()):
        raise CatchjaxError(f"reward must be a column name, got {reward!r}")
    if report is not None:
        names = report.split(",") if isinstance(report, str) else report
        if isinstance(names, (bytes, dict)) or not hasattr(names, "__iter__"):
            raise CatchjaxError(f"report must be column names (a list or 'a,b'), got {report!r}")
        names = list(names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise CatchjaxError(f"report must name at least one column, got {report!r}")
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, numbers.Real)):
        raise CatchjaxError(f"gamma must be a number (e.g. 0.478) or None, got {gamma!r}")
    if gamma is None and gamma_normalize != "minmax":
        raise CatchjaxError("gamma_normalize goes with gamma; without gamma it does nothing")
    if cost is not None and not isinstance(cost, CostObjective):
        raise CatchjaxError(f"cost must be a CostObjective(metric, target, weight), got "
                            f"{cost!r}")
    if not isinstance(mask_nan, (bool, np.bool_)):
        raise CatchjaxError(f"mask_nan is True or False, got {mask_nan!r}")


def check_cost(cost: CostObjective) -> None:
    """Refuse a cost objective that cannot mean "faster is better"."""
    import math

    if not (isinstance(cost.target, (int, float)) and math.isfinite(cost.target)
            and cost.target > 0):
        raise CatchjaxError(
            f"the latency target T (--cost-target) must be a finite number > 0, got {cost.target}"
        )
    if not (isinstance(cost.weight, (int, float)) and math.isfinite(cost.weight)):
        raise CatchjaxError(f"the cost weight w (--cost-weight) must be finite, got {cost.weight}")
    if cost.weight > 0:
        raise CatchjaxError(
            f"the cost weight w (--cost-weight) must be <= 0 (the paper uses -0.05): a "
            f"positive w would reward slower networks, got {cost.weight}"
        )


def _transformed_reward(spec: TaskSpec, table: tables.Table) -> np.ndarray:
    p = table.column(spec.reward_metric).astype(np.float64)
    if spec.gamma is not None:
        if not 0 < spec.gamma < np.inf:
            raise CatchjaxError(f"gamma must be > 0 and finite (--gamma), got {spec.gamma}")
        if spec.gamma_normalize == "percent":
            u = p / 100.0
        elif spec.gamma_normalize == "none":  # already in [0, 1] (e.g. SSIM)
            u = p
        elif spec.gamma_normalize == "minmax":
            lo, hi = np.nanmin(p), np.nanmax(p)
            u = (p - lo) / (hi - lo) if hi > lo else np.zeros_like(p)
        else:
            raise CatchjaxError(
                f"gamma_normalize must be 'percent', 'none' or 'minmax', got "
                f"{spec.gamma_normalize!r}"
            )
        if np.nanmin(u) < 0 or np.nanmax(u) > 1:
            raise CatchjaxError(
                f"the gamma transform needs {spec.reward_metric} in [0, 1] after "
                f"{spec.gamma_normalize!r} normalization; use gamma_normalize='minmax'"
            )
        p = u**spec.gamma
    if spec.cost is not None:
        check_cost(spec.cost)
        lat = table.column(spec.cost.metric).astype(np.float64)
        if np.nanmin(lat) <= 0:
            raise CatchjaxError(
                f"cost metric {spec.cost.metric} has values <= 0; a latency must be positive"
            )
        p = latency_aware_reward(p, lat, spec.cost.target, spec.cost.weight)
    return p


def latency_aware_reward(p, lat, target, weight=-0.05):
    """R = P * (LAT/T)^w (MnasNet; CATCH §4.3 uses w = -0.05) for P >= 0. For P < 0 (e.g.
    a negative loss) the exponent's sign flips, so a slower network still gets a lower
    reward: R rises with P and falls with LAT for every P."""
    p, lat = np.asarray(p, np.float64), np.asarray(lat, np.float64)
    exponent = np.where(p >= 0, weight, -weight)
    return p * (lat / target) ** exponent


def build_task(spec: TaskSpec, table: tables.Table) -> Task:
    for name in spec.report_metrics:
        table.column(name)
    if not spec.report_metrics:
        raise CatchjaxError("a task needs at least one report metric")
    reward = _transformed_reward(spec, table)
    nan = np.isnan(reward)
    if nan.all():
        raise CatchjaxError(f"reward metric {spec.reward_metric!r} is NaN for every architecture")
    if nan.any() and not spec.mask_nan:
        raise CatchjaxError(
            f"reward metric {spec.reward_metric!r} of {spec.benchmark!r} is NaN for "
            f"{int(nan.sum())} of {len(nan)} architectures. Pick another metric, or opt in "
            f"to searching only the {int((~nan).sum())} that have it (mask_nan=True, "
            f"--mask-nan on the command line)"
        )
    objectives = None
    if spec.objectives:  # minimized, scaled to [0, 1] over the searchable rows
        from catchjax.benchmarks import pareto
        from catchjax.benchmarks.names import is_hardware_cost

        cols = np.stack([table.column(o.column).astype(np.float64) for o in spec.objectives], 1)
        for j, o in enumerate(spec.objectives):  # HW-NAS-Bench's -1: not measured
            if is_hardware_cost(o.column):
                cols[:, j] = np.where(cols[:, j] > 0, cols[:, j], np.nan)
        missing = np.isnan(cols).any(axis=1) & ~nan
        nan |= missing
        if missing.any() and not spec.mask_nan:
            raise CatchjaxError(
                f"the objectives of {spec.benchmark!r} are missing for {int(missing.sum())} "
                f"of {len(nan)} architectures (NaN, or a latency/energy <= 0: HW-NAS-Bench "
                f"marks networks a device could not run with -1); search only the others "
                f"with mask_nan=True (--mask-nan)")
        cols = pareto.as_minimization(cols, [o.direction for o in spec.objectives])
        lo, hi = cols[~nan].min(axis=0), cols[~nan].max(axis=0)
        objectives = np.where(nan[:, None], 1.0, (cols - lo) / np.where(hi > lo, hi - lo, 1.0))
    searchable = ~nan
    space = table.space
    code_to_row = table.code_to_row.copy()
    code_to_row[space.encode(table.actions[nan])] = -1
    report = np.stack([table.column(m) for m in spec.report_metrics], axis=1)
    arrays = TaskArrays(
        reward=jnp.asarray(np.where(searchable, reward, -np.inf), jnp.float32),
        report=jnp.asarray(report, jnp.float32),
        code_to_row=jnp.asarray(code_to_row),
        row_actions=jnp.asarray(table.actions, jnp.int32),
        prefix_mask=jnp.asarray(spaces.prefix_masks(space, table.actions[searchable])),
        neighbors=jnp.asarray(spaces.neighbour_table(space, table.actions, code_to_row)),
        valid_rows=jnp.asarray(np.flatnonzero(searchable).astype(np.int32)),
        objectives=None if objectives is None else jnp.asarray(objectives, jnp.float32),
    )
    return Task(spec, table, arrays, searchable)


def target_columns(task: Task) -> set[str]:
    """Columns that belong to the target task itself: its reward, its report metrics and
    what it would lend to other pools. Training on any of them is not transfer."""
    own = {task.spec.reward_metric, *task.spec.report_metrics}
    return own | tables.target_columns(task.spec.benchmark, task.spec.task)
