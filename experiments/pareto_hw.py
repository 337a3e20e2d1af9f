"""Hardware-aware search as a Pareto front (issue 35): accuracy against each HW-NAS-Bench
device's latency (and energy) on NB201's three datasets.

Every cell is a task with two objectives (the dataset's 12-epoch validation accuracy, max,
reported as its 200-epoch test accuracy; the device's cost, min), and every search is
measured against the table's exact front of the reported columns: the hypervolume of its
found networks as a fraction of the true front's, the share of the front's networks found
and the additive epsilon (units where the true front spans 0..1 per objective). catchjax's
methods run ``--trials`` trials as one compiled call (trial i searches its own weighting
of the objectives); optuna's multi-objective samplers (NSGA-II; TPE with two objectives,
i.e. MOTPE) run ``--seeds`` studies each where optuna is installed.

Writes ``results.csv`` (one row per cell x method x budget), ``summary.md`` and
``hypervolume.png`` (final hypervolume fraction per cell, 95% CI), plus a ``catchjax
report`` (fronts and hypervolume curves) of the first cell under ``report/``.

    CATCHJAX_DATA=../shared/data python experiments/pareto_hw.py --out experiments/results/pareto_hw
        [--datasets cifar10 cifar100 imagenet16-120] [--costs edgegpu-latency ...]
        [--methods random rea ls] [--budgets 50 100] [--trials 500]
        [--samplers nsga2 motpe] [--seeds 100] [--merge OLD/results.csv]

``--merge``: keep the rows of an earlier run's ``results.csv`` (a method added later, or
a slow sampler run on its own) where this run does not compute the same cell, method and
budget; the summary and figure then show both (``--methods`` with no name: rewrite the
summary and figure from that file alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from catchjax import make_task, sweep
from catchjax.benchmarks import pareto, tasks
from catchjax.runs.analysis import bootstrap_ci
from catchjax.runs.results import versions

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
COSTS = tuple(f"{d}-latency" for d in tasks.HARDWARE_DEVICES) + (
    "edgegpu-energy", "eyeriss-energy", "fpga-energy")
METHODS = ("random", "rea", "ls", "nsga")
SAMPLERS = ("nsga2", "motpe")


def front_points(task) -> tuple[np.ndarray, np.ndarray]:
    """Every row's reported objectives, minimized and scaled so that the true front spans
    [0, 1] (non-searchable rows: the reference point), and the reference point."""
    return pareto.task_points(np.asarray(task.arrays.report, np.float64),
                              [o.direction for o in task.spec.objectives], task.front,
                              task.searchable)


def optuna_searches(task, sampler: str, seeds: int, budget: int) -> tuple[np.ndarray, float]:
    """The rows ``seeds`` optuna studies evaluated ([seeds, budget]; -1 = a pruned draw
    that is not a network of the table) and the seconds per study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from experiments.optuna_samplers import rows_by_decisions

    row_of = rows_by_decisions(task)
    cols = [np.asarray(task.table.columns[o.column], np.float64) for o in task.spec.objectives]
    choices = list(range(task.space.n_choices))
    rows = np.full((seeds, budget), -1)
    t0 = time.perf_counter()
    for seed in range(seeds):
        seen: list[int] = []

        def objective(trial, seen=seen):
            a = tuple(trial.suggest_categorical(f"d{i}", choices)
                      for i in range(task.space.n_decisions))
            row = row_of.get(a)
            if row is None or not task.searchable[row]:
                raise optuna.TrialPruned()
            seen.append(row)
            return tuple(float(c[row]) for c in cols)

        make = (optuna.samplers.NSGAIISampler if sampler == "nsga2"
                else optuna.samplers.TPESampler)
        study = optuna.create_study(
            directions=["maximize" if o.direction == "max" else "minimize"
                        for o in task.spec.objectives], sampler=make(seed=seed))
        study.optimize(objective, n_trials=budget)
        rows[seed, :len(seen)] = seen
    return rows, (time.perf_counter() - t0) / seeds


def measure(rows: np.ndarray, points, front, ref) -> dict:
    """The issue's measures of searches ``rows`` [T, B] (-1 entries: no network, padded
    with the trial's first evaluated row, which adds nothing new)."""
    rows = np.where(rows < 0, rows[:, :1], rows)
    m = pareto.search_measures(rows, points, front, ref)
    out = {"union_hv": m["union_hv_ratio"], "union_found": m["union_fraction_found"]}
    for k in ("fraction_found", "epsilon"):
        out[k] = float(np.mean(m[k]))
    hv = m["hv_ratio"][:, -1]
    out["hv"], (out["hv_low"], out["hv_high"]) = float(hv.mean()), bootstrap_ci(hv)
    return out


def run(args) -> list[dict]:
    from catchjax.store import reporting

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    first_cell = []
    for dataset in args.datasets:
        for cost in args.costs:
            objectives = tasks.hardware_objectives("nb201", dataset, cost)
            # Edge TPU latency is -1 (not measured) for 4,699 networks: search the others
            task = make_task("nb201", dataset, objectives=objectives, mask_nan=True)
            points, ref = front_points(task)
            for budget in args.budgets:
                for method in args.methods:
                    t0 = time.perf_counter()
                    res = sweep(method, task, trials=args.trials, budget=budget, seed=0)
                    seconds = time.perf_counter() - t0
                    rec = {"dataset": dataset, "cost": cost, "budget": budget,
                           "method": method, "searches": args.trials,
                           "front_size": len(task.front),
                           "seconds_per_search": seconds / args.trials,
                           **measure(res.rows, points, task.front, ref)}
                    records.append(rec)
                    if budget == args.budgets[0] and (
                            not first_cell or first_cell[0][:2] == (dataset, cost)):
                        folder = out / "runs" / f"{method}-{budget}"
                        reporting.write_results(res, folder, overwrite=True)
                        first_cell.append((dataset, cost, folder))
                    print(_line(rec), flush=True)
                for sampler in args.samplers:
                    rows, seconds = optuna_searches(task, sampler, args.seeds, budget)
                    rec = {"dataset": dataset, "cost": cost, "budget": budget,
                           "method": f"optuna-{sampler}", "searches": args.seeds,
                           "front_size": len(task.front), "seconds_per_search": seconds,
                           **measure(rows, points, task.front, ref)}
                    records.append(rec)
                    print(_line(rec), flush=True)
    if args.merge:  # the summary and figure show every cell and budget of both
        records = _merged(records, args.merge)
        args.budgets = sorted({r["budget"] for r in records})
        args.datasets = [d for d in DATASETS if any(r["dataset"] == d for r in records)]
        args.costs = [c for c in COSTS if any(r["cost"] == c for r in records)]
    _write(records, out, args)
    if first_cell:
        from catchjax.studies import report

        report.build([str(f) for _, _, f in first_cell], out / "report", overwrite=True)
    return records


_INT_FIELDS = ("budget", "searches", "front_size")
_TEXT_FIELDS = ("dataset", "cost", "method")


def _merged(records: list[dict], path) -> list[dict]:
    """``records`` after the rows of an earlier ``results.csv`` that they do not redo."""
    with open(path, newline="") as f:
        old = [{k: (v if k in _TEXT_FIELDS else int(v) if k in _INT_FIELDS else float(v))
                for k, v in row.items()} for row in csv.DictReader(f)]
    key = ("dataset", "cost", "budget", "method")
    done = {tuple(r[k] for k in key) for r in records}
    return [r for r in old if tuple(r[k] for k in key) not in done] + records


def _line(r: dict) -> str:
    return (f"{r['dataset']:15s} {r['cost']:16s} {r['budget']:4d} {r['method']:14s} "
            f"hv {r['hv']:.3f} [{r['hv_low']:.3f}, {r['hv_high']:.3f}] found "
            f"{r['fraction_found']:.1%} eps {r['epsilon']:.3f}  all: hv {r['union_hv']:.3f} "
            f"found {r['union_found']:.0%}  ({r['seconds_per_search'] * 1e3:.2f} ms/search)")


def _write(records: list[dict], out: Path, args) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    methods = list(dict.fromkeys(r["method"] for r in records))
    lines = ["# Pareto fronts of accuracy against hardware cost (NB201, HW-NAS-Bench)", "",
             f"catchjax methods: {args.trials} trials each (one compiled call); optuna "
             f"samplers: {args.seeds} studies each. Cell: mean hypervolume of a search's "
             f"found networks as a fraction of the true front's [95% bootstrap CI], mean "
             f"share of the front's networks found; last column per budget: all searches "
             f"together. Objectives: the dataset's 12-epoch validation accuracy (max, "
             f"reported: 200-epoch test accuracy) and the device's cost (min); networks "
             f"whose cost HW-NAS-Bench did not measure (-1: Edge TPU latency, 4,699 of "
             f"15,625) are left out of the search and of the front.", ""]
    for budget in args.budgets:
        lines += [f"## {budget} evaluations", "",
                  "| dataset | cost | front | " + " | ".join(methods) + " |",
                  "|---|---|---|" + "---|" * len(methods)]
        for dataset in args.datasets:
            for cost in args.costs:
                cells = []
                for m in methods:
                    r = next((x for x in records if (x["dataset"], x["cost"], x["budget"],
                                                     x["method"]) == (dataset, cost, budget, m)),
                             None)
                    cells.append("" if r is None else
                                 f"{r['hv']:.3f} [{r['hv_low']:.3f}, {r['hv_high']:.3f}], "
                                 f"{r['fraction_found']:.0%}")
                size = next(x["front_size"] for x in records
                            if (x["dataset"], x["cost"]) == (dataset, cost))
                lines.append(f"| {dataset} | {cost} | {size} | " + " | ".join(cells) + " |")
        lines.append("")
    speed = {m: np.mean([r["seconds_per_search"] for r in records if r["method"] == m])
             for m in methods}
    lines += ["Seconds per search (mean over cells): " + ", ".join(
        f"{m} {s * 1e3:.2f} ms" for m, s in speed.items()), "",
        f"versions: {json.dumps(versions())}"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    _plot(records, out, args, methods)


def _plot(records, out: Path, args, methods) -> None:
    """Final hypervolume fraction with its 95% CI: one panel per dataset (columns) and
    budget (rows), the costs along x, a dot per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from catchjax.benchmarks.names import TASK_NAMES

    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        fig, axes = plt.subplots(len(args.budgets), len(args.datasets), squeeze=False,
                                 sharey=True, figsize=(4.6 * len(args.datasets),
                                                       2.9 * len(args.budgets)))
        width = 0.8 / len(methods)
        for row, budget in enumerate(args.budgets):
            for col, dataset in enumerate(args.datasets):
                ax = axes[row, col]
                for j, m in enumerate(methods):
                    xs, ys, lo, hi = [], [], [], []
                    for i, cost in enumerate(args.costs):
                        r = next((x for x in records if (x["dataset"], x["cost"], x["budget"],
                                                         x["method"]) == (dataset, cost, budget,
                                                                          m)), None)
                        if r is not None:
                            xs.append(i - 0.4 + width * (j + 0.5))
                            ys.append(r["hv"])
                            lo.append(r["hv"] - r["hv_low"])
                            hi.append(r["hv_high"] - r["hv"])
                    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=2.5, capsize=1.5, lw=0.8,
                                label=m)
                ax.set_xticks(range(len(args.costs)))
                ax.set_xticklabels(args.costs, fontsize=6, rotation=40, ha="right")
                ax.set_title(f"{TASK_NAMES.get(dataset, dataset)}, {budget} evaluations",
                             fontsize=8)
                ax.grid(alpha=0.3)
            axes[row, 0].set_ylabel("hypervolume / true front's", fontsize=8)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(methods), fontsize=7,
                   frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        fig.savefig(out / "hypervolume.png", dpi=130)
        fig.savefig(out / "hypervolume.pdf")
        plt.close(fig)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/pareto_hw")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--costs", nargs="+", default=list(COSTS))
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--budgets", nargs="+", type=int, default=[50, 100])
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--samplers", nargs="*", default=[], choices=SAMPLERS)
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--merge", help="an earlier run's results.csv whose rows to keep")
    args = p.parse_args(argv)
    if args.merge and not Path(args.merge).is_file():
        p.error(f"--merge {args.merge}: no such results file")
    for cost in args.costs:  # every preset checked before anything runs
        tasks.hardware_objectives("nb201", args.datasets[0], cost)
    return run(args)


if __name__ == "__main__":
    main()
