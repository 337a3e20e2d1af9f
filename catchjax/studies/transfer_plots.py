"""Plots of a transfer study (paper 002 Figs. 5-13): regime matrices as heatmaps, training
curves per target with 95% bands over seeds, crossover bars per target."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from catchjax import methods, safe_io


def curve_labels(method: str) -> tuple[str, str]:
    """(x-axis unit, y-axis metric) of a method's training curves, from its learner."""
    learner = methods.get(method).learner
    return learner.curve_unit, learner.curve_metric


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    safe_io.atomic_write_bytes(path, buf.getvalue())


def plot_all(out: Path, result: dict, spec) -> None:
    """The study's figures: one matrix per regime, the training curves on each target,
    and the crossovers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(spec.tasks)
    # the learner names its curve: the DQN trains in environment steps and is scored by
    # greedy episodes, CATCH meta-trains in table queries and is scored by adaptation
    unit, metric = curve_labels(getattr(spec, "method", "dqn"))
    colour = {s: f"C{i}" for i, s in enumerate(tasks)}  # one colour per source everywhere
    _plot_matrices(plt, out, result, tasks)
    _plot_curves(plt, out, result, tasks, unit, metric, colour)
    _plot_crossover(plt, out, result, tasks, unit, colour)


def _plot_matrices(plt, out: Path, result: dict, tasks: list) -> None:
    n = len(tasks)
    for regime in ("zero-shot", "fine-tune", "retrain"):
        cells = {(c["source"], c["target"]): c for c in result["cells"]
                 if c["regime"] == regime}
        grid = np.full((n, n), np.nan)
        fig, ax = plt.subplots(figsize=(1.9 * n + 1.5, 1.4 * n + 1))
        for i, s in enumerate(tasks):
            for j, t in enumerate(tasks):
                c = cells.get((s, t))
                if c is None:
                    continue
                # colour by rank within the target column: targets have different metrics
                col = [cells[(x, t)]["mean"] for x in tasks if (x, t) in cells]
                lo, hi = min(col), max(col)
                grid[i, j] = 0.5 if hi == lo else (c["mean"] - lo) / (hi - lo)
                ax.text(j, i, f"{c['mean']:.3f}\n±{c['std']:.3f}", ha="center", va="center",
                        fontsize=8)
        ax.imshow(grid, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(n), tasks, rotation=30, ha="right")
        ax.set_yticks(range(n), tasks)
        ax.set_xlabel("target task")
        ax.set_ylabel("source task")
        ax.set_title(f"{regime} (colour: rank within each target column)")
        _save(fig, out / f"matrix_{regime}.png")


def _plot_curves(plt, out: Path, result: dict, tasks: list, unit: str, metric: str,
                 colour: dict) -> None:
    n = len(tasks)
    # training curves on each target: scratch vs transferred from each source
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    curves = result["curves"]
    for j, t in enumerate(tasks):
        ax = axes[0, j]
        for s in tasks:
            rows = [c for c in curves if c["target"] == t and c["source"] == s]
            if not rows:
                continue
            steps = np.array(sorted({r["step"] for r in rows}))
            seeds = sorted({r["seed"] for r in rows})
            vals = np.array([[next(r["test"] for r in rows if r["seed"] == sd and r["step"] == st)
                              for st in steps] for sd in seeds])
            mean = vals.mean(axis=0)
            half = 1.96 * vals.std(axis=0, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 \
                else np.zeros_like(mean)
            label = "scratch" if s == t else f"from {s}"
            c = "k" if s == t else colour[s]
            ax.plot(steps, mean, label=label, ls="--" if s == t else "-", color=c)
            ax.fill_between(steps, mean - half, mean + half, alpha=0.15, color=c)
        ax.set_title(f"target: {t}")
        ax.set_xlabel(f"target {unit}")
        if j == 0:
            ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    _save(fig, out / "curves.png")


def _plot_crossover(plt, out: Path, result: dict, tasks: list, unit: str,
                    colour: dict) -> None:
    n = len(tasks)
    # crossover: steps to reach the scratch runs' final performance
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    for j, t in enumerate(tasks):
        ax = axes[0, j]
        rows = [c for c in result["crossover"] if c["target"] == t]
        for k, r in enumerate(rows):
            m = r["mean_steps"]
            err = [[m - r["ci_low_steps"]], [r["ci_high_steps"] - m]] if np.isfinite(m) else None
            ax.bar(k, m if np.isfinite(m) else 0, yerr=err, capsize=3,
                   hatch="//" if r["kind"] == "scratch" else None, edgecolor="k",
                   color=colour[r["source"]])
            ax.text(k, 0, f"{r['pairs_reached']}/{r['pairs']}", ha="center", va="bottom",
                    fontsize=7)
        ax.set_xticks(range(len(rows)), [r["source"] for r in rows], rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(f"target: {t}", fontsize=9)
        if j == 0:
            ax.set_ylabel(f"{unit} to reach scratch final")
    _save(fig, out / "crossover.png")
