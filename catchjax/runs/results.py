"""What a sweep produced, on the host: :class:`SweepResult` and its summary statistics."""

from __future__ import annotations

import dataclasses

import numpy as np

from catchjax.benchmarks.tasks import Task
from catchjax.runs import analysis
from catchjax.store.provenance import versions


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
            "trials_run": self.n_run,
            "trials_per_second": self.n_run / self.wall_seconds if self.wall_seconds else None,
            "device": self.device,
            "config": {"method": self.method, **dataclasses.asdict(self.config)},
            "task_spec": dataclasses.asdict(spec),
            "versions": versions(),
            "computed_on": self.computed_on,
            **({"search_metrics": self.metric_means()} if self.metrics else {}),
            **self.agent_summary(),
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

    def metric_means(self) -> dict:
        """Each per-epoch metric averaged over the trials: name -> [n_epochs] list."""
        return {k: np.asarray(v, np.float64).mean(axis=0).tolist()
                for k, v in self.metrics.items()}
