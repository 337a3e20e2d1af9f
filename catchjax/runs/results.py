"""What a sweep produced, on the host: :class:`SweepResult` and its summary statistics."""

from __future__ import annotations

import dataclasses

import numpy as np

from catchjax.benchmarks.tasks import Task
from catchjax.runs import analysis
from catchjax.store.provenance import versions

CURVE_MAX = 2_000_000  # (trial, evaluation) pairs up to which the hypervolume curve is kept


@dataclasses.dataclass
class SweepResult:
    """Everything one sweep produced, as NumPy arrays on the host."""

    method: str
    config: object
    task: Task
    seed: int
    rows: np.ndarray  # i32 [T, B] evaluated rows
    rewards: np.ndarray  # f32 [T, B]
    compile_seconds: float
    wall_seconds: float
    device: str
    info: dict = dataclasses.field(default_factory=dict)  # extra fields for summary.json
    # per-epoch diagnostics of methods that have them, each [T, n_epochs] (SearchTrace.metrics)
    metrics: dict = dataclasses.field(default_factory=dict)
    # trials computed in this call (fewer than ``trials`` when a sweep resumed)
    trials_run: int | None = None
    # trained agents the trials were shared among (trial i adapted agent i % n_agents)
    n_agents: int = 1
    # platform, devices, XLA flags and options it ran under (catchjax.store.provenance)
    computed_on: dict = dataclasses.field(default_factory=dict)
    # what compile_seconds measured: "compiled", "loaded" from the persistent compilation
    # cache, or "reused" from earlier in this process (catchjax.runs.batched.compile_source)
    compile_source: str = "compiled"

    @property
    def trials(self) -> int:
        return self.rows.shape[0]

    @property
    def n_run(self) -> int:
        return self.trials if self.trials_run is None else self.trials_run

    @property
    def budget(self) -> int:
        return self.rows.shape[1]

    @property
    def best_step(self) -> np.ndarray:
        """[T, B]: the step whose architecture is best by reward among steps <= t."""
        if not hasattr(self, "_best_step"):
            self._best_step = analysis.best_so_far(self.rewards)
        return self._best_step

    @property
    def best_row(self) -> np.ndarray:
        return np.take_along_axis(self.rows, self.best_step, axis=1)

    @property
    def best_reward(self) -> np.ndarray:
        return np.take_along_axis(self.rewards, self.best_step, axis=1)

    @property
    def best_report(self) -> np.ndarray:
        """[T, B, n_report]: report metrics of the best-by-reward architecture so far."""
        return np.asarray(self.task.arrays.report)[self.best_row]

    @property
    def final_report(self) -> np.ndarray:
        """[T]: primary report metric of each trial's chosen architecture."""
        return self.best_report[:, -1, 0]

    def summary(self) -> dict:
        spec = self.task.spec
        report = np.asarray(self.task.arrays.report)[:, 0]
        table_best = float(np.nanmax(report[self.task.searchable]))
        final = self.final_report.astype(np.float64)
        return {
            "method": self.method,
            "benchmark": spec.benchmark,
            "task": spec.task,
            "trials": self.trials,
            "budget": self.budget,
            "seed": self.seed,
            "reward_metric": spec.reward_metric,
            "report_metric": spec.report_metrics[0],
            "report_metrics": list(spec.report_metrics),
            "mean": float(final.mean()),
            "std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            "ci95": list(analysis.bootstrap_ci(final, seed=self.seed)),
            "ci_method": analysis.ci_method(len(final)),
            "best_hits": int(np.sum(final >= table_best)),
            "table_best": table_best,
            "report_means": {
                m: float(self.best_report[:, -1, j].mean())
                for j, m in enumerate(spec.report_metrics)
            },
            "mean_best_reward": float(self.best_reward[:, -1].mean()),
            "wall_seconds": self.wall_seconds,
            "compile_seconds": self.compile_seconds,
            "compile_source": self.compile_source,
            "trials_run": self.n_run,
            "trials_per_second": self.n_run / self.wall_seconds if self.wall_seconds else None,
            "device": self.device,
            "config": {"method": self.method, **dataclasses.asdict(self.config)},
            "task_spec": dataclasses.asdict(spec),
            "versions": versions(),
            "computed_on": self.computed_on,
            **({"search_metrics": self.metric_means()} if self.metrics else {}),
            **self.agent_summary(),
            **self.pareto_summary(),
            **self.info,
        }

    def agent_summary(self) -> dict:
        """With several agents: the mean reported value of each agent's trials, their
        std (the spread a result that rests on trained agents must show) and counts."""
        if self.n_agents <= 1:
            return {}
        which = np.arange(self.trials) % self.n_agents
        final = self.final_report.astype(np.float64)
        means = [float(final[which == a].mean()) for a in range(self.n_agents)
                 if np.any(which == a)]
        return {"agents": self.n_agents, "agent_means": means,
                "agent_trials": [int(np.sum(which == a)) for a in range(self.n_agents)],
                "agent_spread": float(np.std(means, ddof=1)) if len(means) > 1 else 0.0}

    def pareto_measures(self) -> dict:
        """A multi-objective sweep's measures on the reported columns against the table's
        true front (:func:`catchjax.benchmarks.pareto.search_measures`), computed once."""
        if not hasattr(self, "_pareto"):
            from catchjax.benchmarks import pareto

            spec, task = self.task.spec, self.task
            points, ref = pareto.task_points(np.asarray(task.arrays.report, np.float64),
                                             [o.direction for o in spec.objectives],
                                             task.front, task.searchable)
            # the curve over evaluations costs trials x budget hypervolumes: up to
            # CURVE_MAX of them, beyond that the final value only
            curve = self.rows.size <= CURVE_MAX
            self._pareto = {"reference_point": ref, **pareto.search_measures(
                self.rows, points, task.front, ref, curve=curve)}
        return self._pareto

    def pareto_summary(self) -> dict:
        """For a multi-objective task: the true front's size, and per trial (mean, CI) and
        pooled over the trials the hypervolume ratio to the true front, the fraction of the
        front found and the additive epsilon to it, in units where the true front spans
        [0, 1] per objective (reference point 1.1 each: the front's nadir plus 10%)."""
        if not self.task.spec.objectives:
            return {}
        m = self.pareto_measures()

        def stat(values):
            values = np.asarray(values, np.float64)
            return {"mean": float(values.mean()),
                    "ci95": list(analysis.bootstrap_ci(values, seed=self.seed))}

        return {"pareto": {
            "objectives": [dataclasses.asdict(o) for o in self.task.spec.objectives],
            "front_size": int(len(self.task.front)),
            "reference_point": [float(x) for x in m["reference_point"]],
            "hv_ratio": stat(m["hv_ratio"][:, -1]),
            **({"hv_ratio_by_evaluation": m["hv_ratio"].mean(axis=0).tolist(),
                "hv_ratio_by_evaluation_se": (m["hv_ratio"].std(axis=0, ddof=1)
                                              / np.sqrt(len(m["hv_ratio"]))).tolist()
                if len(m["hv_ratio"]) > 1 else [0.0] * self.budget}
               if m["hv_ratio"].shape[1] == self.budget else {}),
            # the true front in reported units (its rows and their values), for figures
            "front_rows": [int(r) for r in self.task.front],
            "true_front": np.asarray(self.task.arrays.report, np.float64)[
                self.task.front].tolist(),
            "fraction_found": stat(m["fraction_found"]),
            "epsilon": stat(m["epsilon"]),
            "union": {"hv_ratio": float(m["union_hv_ratio"]),
                      "fraction_found": float(m["union_fraction_found"]),
                      "epsilon": float(m["union_epsilon"])}}}

    def metric_means(self) -> dict:
        """Each per-epoch metric averaged over the trials: name -> [n_epochs] list."""
        return {k: np.asarray(v, np.float64).mean(axis=0).tolist()
                for k, v in self.metrics.items()}
