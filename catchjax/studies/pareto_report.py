"""The multi-objective part of ``catchjax report`` (issue 35): for runs whose summary has
a Pareto front, a table of how much of the true front each method found and two figures,
hypervolume over evaluations (95% band) and the found fronts over the true front."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from catchjax.benchmarks import pareto

FIGURES = ("pareto_hypervolume", "pareto_fronts")


def _key(run) -> tuple:
    s = run.summary
    objectives = tuple((o["column"], o["direction"]) for o in s["pareto"]["objectives"])
    return (s["benchmark"], s["task"], objectives)


def _found_front(run) -> np.ndarray:
    """The union over a run's trials of their non-dominated networks (fronts.csv), reduced
    to its own front: [k, d] in reported units."""
    s = run.summary
    names = s["report_metrics"]
    path = Path(run.path) / "fronts.csv"
    if not path.is_file():
        return np.zeros((0, len(names)))
    with open(path) as f:
        points = np.array([[float(r[n]) for n in names] for r in csv.DictReader(f)])
    if len(points) == 0:
        return np.zeros((0, len(names)))
    directions = [o["direction"] for o in s["pareto"]["objectives"]]
    return points[pareto.nondominated(pareto.as_minimization(points, directions))]


def section(runs, out: Path, formats=("png", "pdf", "svg")) -> list[str]:
    """Report lines (and figures written into ``out``) for the runs with several
    objectives; nothing for others."""
    runs = [r for r in runs if "pareto" in r.summary]
    if not runs:
        return []
    from catchjax.benchmarks.names import display_name, task_title

    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault(_key(r), []).append(r)
    lines = []
    for (bench, task, _), group in groups.items():
        group = sorted(group, key=lambda r: -r.summary["pareto"]["hv_ratio"]["mean"])
        first = group[0].summary["pareto"]
        names = " vs ".join(f"{display_name(o['report'] or o['column'])} ({o['direction']})"
                            for o in first["objectives"])
        lines += ["", f"## {task_title(bench, task)}: Pareto front of {names}", "",
                  f"The table's true front has {first['front_size']} networks. Per trial: "
                  f"hypervolume as a fraction of the true front's (mean [95% CI]), share of "
                  f"the front's networks found, additive epsilon to the front; all trials: the "
                  f"same for the union of the trials' fronts. Units: the true front spans "
                  f"0..1 in each objective, reference point 1.1.", "",
                  "| method | trials × budget | hypervolume | front found | epsilon "
                  "| all trials: hypervolume, found, epsilon |", "|---|---|---|---|---|---|"]
        for r in group:
            p, s = r.summary["pareto"], r.summary
            hv = p["hv_ratio"]
            u = p["union"]
            lines.append(f"| {s['method']} | {s['trials']} × {s['budget']} | {hv['mean']:.3f} "
                         f"[{hv['ci95'][0]:.3f}, {hv['ci95'][1]:.3f}] | "
                         f"{p['fraction_found']['mean']:.1%} | {p['epsilon']['mean']:.3f} | "
                         f"{u['hv_ratio']:.3f}, {u['fraction_found']:.0%}, "
                         f"{u['epsilon']:.3f} |")
    _plot(groups, out, formats)
    lines += ["", "Plots: `pareto_hypervolume` (mean hypervolume fraction over evaluations, "
              "95% band), `pareto_fronts` (each method's union of found fronts over the "
              "table's true front; log scale where the cost spans a decade or more)."]
    return lines


def _plot(groups: dict, out: Path, formats) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from catchjax.benchmarks.names import display_name, task_title

    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        n = len(groups)
        fig_hv, ax_hv = plt.subplots(1, n, figsize=(3.6 * n, 2.8), squeeze=False)
        fig_fr, ax_fr = plt.subplots(1, n, figsize=(3.6 * n, 3.0), squeeze=False)
        for (key, group), a1, a2 in zip(groups.items(), ax_hv[0], ax_fr[0]):
            bench, task, objectives = key
            for r in group:
                p = r.summary["pareto"]
                if "hv_ratio_by_evaluation" not in p:  # a sweep too large for the curve
                    continue
                y = np.asarray(p["hv_ratio_by_evaluation"])
                se = np.asarray(p["hv_ratio_by_evaluation_se"])
                x = np.arange(1, len(y) + 1)
                (line,) = a1.plot(x, y, lw=1.3, label=r.summary["method"])
                a1.fill_between(x, y - 1.96 * se, y + 1.96 * se, color=line.get_color(),
                                alpha=0.2, lw=0)
            a1.set_xlabel("networks evaluated")
            a1.set_ylabel("hypervolume / true front's")
            title = task_title(bench, task).replace(" (made-up numbers), ", " (made-up),\n")
            a1.set_title(title, fontsize=8)
            a1.set_ylim(0, 1.02)
            a1.legend(fontsize=7)
            if len(objectives) != 2:  # a 2-D picture of the fronts only
                a2.set_visible(False)
                continue
            true = np.asarray(group[0].summary["pareto"]["true_front"])
            order = np.argsort(true[:, 0])
            a2.plot(true[order, 0], true[order, 1], "k-", lw=0.8, alpha=0.6)
            a2.plot(true[:, 0], true[:, 1], "ko", ms=5, mfc="none", label="true front")
            for r in group:
                found = _found_front(r)
                if len(found):
                    a2.plot(found[:, 0], found[:, 1], ".", ms=5, label=r.summary["method"])
            names = [display_name(x) for x in group[0].summary["report_metrics"][:2]]
            a2.set_xlabel(names[0], fontsize=8)
            a2.set_ylabel(names[1], fontsize=8)
            cost = true[:, 1]
            if cost.min() > 0 and cost.max() / cost.min() >= 10:
                a2.set_yscale("log")
                plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
                a2.yaxis.set_major_formatter(plain)  # 0.5, 1, 2, not 5x10^-1
                a2.yaxis.set_minor_formatter(plain)
            a2.set_title(title, fontsize=8)
            a2.legend(fontsize=7)
        for fig, name in ((fig_hv, FIGURES[0]), (fig_fr, FIGURES[1])):
            fig.tight_layout()
            for fmt in formats:
                fig.savefig(out / f"{name}.{fmt}", dpi=200)
            plt.close(fig)
