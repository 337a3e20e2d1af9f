"""``catchjax report``: a comparison of saved runs, built from their files alone.

A sweep folder (``summary.json`` + ``results.csv`` or ``results.parquet``, written by
:mod:`catchjax.store.reporting`) gives one row of the comparison table — taken from its
summary, never recomputed — and its per-trial best-so-far curves for the plots: the
sorted final values of every trial (CATCH paper Fig. 3) and the mean best-so-far with a
95% band. Each run's table is checked against its summary (the trial count and the mean
final value), so a truncated or edited run is named instead of silently plotted. A
transfer-study folder (``study.json``, written by :mod:`catchjax.studies.transfer`) contributes
its three regime matrices (markdown and heatmaps, from ``cells.csv``/``curves.csv``/
``crossover.csv``). Runs of different benchmarks, tasks or report metrics are not put in
one table unless asked (``mix``); then each gets its own table and panel.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catchjax import safe_io
from catchjax.errors import CatchjaxError
from catchjax.runs import analysis
from catchjax.store import reporting
from catchjax.studies import pareto_report

# figures, each as PNG (to look at), PDF and SVG (for a paper)
FIGURES = ("fig3_sorted", "best_so_far", "regret")
FIGURE_FORMATS = ("png", "pdf", "svg")
REPORT_FILES = {"report.md", "comparison.csv", "transfer"} | {
    f"{name}.{fmt}" for name in FIGURES + pareto_report.FIGURES for fmt in FIGURE_FORMATS}
COLUMNS = ["run", "method", "benchmark", "task", "report_metric", "trials", "budget", "seed",
           "mean", "std", "ci_low", "ci_high", "best_hits", "table_best", "compile_seconds",
           "wall_seconds", "device", "reward_metric", "agents", "ci_method"]
# what the comparison column means, under each table
COMPARISON_NOTE = (
    "Rows are sorted by mean, best first. *vs the best by mean* compares each later row "
    "with the first: the difference of the means with its 95% interval (Welch's normal "
    "approximation) and p of the two-sided Mann-Whitney U test over the trials' final "
    "values (independent searches, not paired). The searched reward and the seed are the "
    "run's own; a meta-trained method's trials are shared among its agents. *compile s* "
    "is the search's compile; *(loaded)* marks one read from JAX's persistent compilation "
    "cache instead, *(reused)* one compiled earlier in the same process.")


@dataclass
class SweepRun:
    path: Path
    summary: dict
    curves: np.ndarray  # [trials, budget]: best-so-far report metric of each trial

    @property
    def group(self) -> tuple[str, str, str]:
        s = self.summary
        return (s["benchmark"], s["task"], s["report_metric"])

    @property
    def finals(self) -> np.ndarray:
        return self.curves[:, -1]

    def row(self) -> dict:
        s = self.summary
        lo, hi = s["ci95"]
        out = {"run": str(self.path), "ci_low": lo, "ci_high": hi}
        out.update({k: s[k] for k in COLUMNS if k in s})
        return {k: out.get(k) for k in COLUMNS}


@dataclass
class StudyRun:
    path: Path
    summary: dict
    result: dict = field(default_factory=dict)  # cells, curves, crossover as saved


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatchjaxError(f"{path.parent} has no {path.name}: {what}") from None
    except (OSError, ValueError) as exc:
        raise CatchjaxError(f"{path} is unreadable ({exc}); rerun that run") from None
    if not isinstance(value, dict):
        raise CatchjaxError(f"{path} holds a JSON {type(value).__name__}, not the object "
                            f"catchjax writes; rerun that run")
    return value


# the columns the report reads from a transfer study's tables (transfer.write_results)
_STUDY_COLUMNS = {
    "cells": {"regime", "source", "target", "kind", "mean", "std", "ci_low", "ci_high"},
    "curves": {"source", "target", "seed", "step", "test"},
    "crossover": {"source", "target", "kind", "mean_steps", "ci_low_steps", "ci_high_steps"},
}
_SUMMARY_TYPES = {"method": str, "benchmark": str, "task": str, "report_metric": str,
                  "trials": int, "budget": int, "mean": (int, float), "std": (int, float)}


def _check_summary(path: Path, s: dict) -> None:
    """A sweep summary whose fields have the types catchjax writes, and (when it carries
    one) whose checksum still matches: an edited summary is not reported as if true."""
    from catchjax.store.reporting import DIGEST, summary_digest

    f = path / "summary.json"
    missing = [k for k in (*_SUMMARY_TYPES, "ci95") if k not in s]
    if missing:
        raise CatchjaxError(f"{f} is not a sweep summary (no {', '.join(missing)})")
    wrong = [k for k, kind in _SUMMARY_TYPES.items()
             if isinstance(s[k], bool) or not isinstance(s[k], kind)]
    ci = s["ci95"]
    if not (isinstance(ci, list) and len(ci) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in ci)):
        wrong.append("ci95")
    if wrong or s["trials"] < 1 or s["budget"] < 1:
        raise CatchjaxError(f"{f}: {', '.join(wrong) or 'trials/budget'} do not have the "
                            f"values catchjax writes; the file was edited or damaged: rerun "
                            f"that sweep")
    if DIGEST in s and s[DIGEST] != summary_digest(s):
        raise CatchjaxError(f"{f} was changed after catchjax wrote it (its {DIGEST} no longer "
                            f"matches): its numbers may not be the run's. Rerun that sweep, "
                            f"or restore the file")


def _sweep_curves(path: Path, s: dict) -> np.ndarray:
    """[trials, budget] best-so-far report metric from results.parquet or results.csv."""
    col = f"best_{s['report_metric']}"
    n, b = int(s["trials"]), int(s["budget"])
    if (path / "results.parquet").exists() and reporting.has_pyarrow():
        import pyarrow.parquet as pq

        try:
            t = pq.read_table(path / "results.parquet", columns=["trial", "step", col])
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise CatchjaxError(f"{path / 'results.parquet'} is unreadable ({exc}); delete "
                                f"it to use results.csv") from None
        trial, step = t["trial"].to_numpy(), t["step"].to_numpy()
        value = t[col].to_numpy().astype(np.float64)
    else:
        f = path / "results.csv"
        if not f.exists():
            raise CatchjaxError(f"{path} has a summary.json but no results.csv; the run is "
                                f"incomplete")
        with open(f, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"trial", "step", col} <= set(reader.fieldnames):
                raise CatchjaxError(f"{f} lacks the columns trial, step, {col}")
            trial, step, value = [], [], []
            for line, r in enumerate(reader, start=2):
                try:
                    trial.append(int(r["trial"]))
                    step.append(int(r["step"]))
                    value.append(float(r[col]))
                except (TypeError, ValueError):
                    raise CatchjaxError(f"{f} line {line} is cut short or damaged; the run's "
                                        f"results are incomplete: rerun that sweep") from None
        trial, step, value = np.asarray(trial), np.asarray(step), np.asarray(value)
    if trial.size != n * b or trial.min(initial=0) < 0 or trial.max(initial=0) >= n \
            or step.min(initial=1) < 1 or step.max(initial=1) > b:
        raise CatchjaxError(
            f"{path}: the results table has {trial.size:,} rows, its summary says {n} trials "
            f"x {b} steps = {n * b:,}; the run is incomplete or its files are from "
            f"different runs")
    curves = np.full((n, b), np.nan)
    curves[trial, step - 1] = value
    if np.isnan(curves).any():
        raise CatchjaxError(f"{path}: some (trial, step) rows are missing or repeated")
    return curves


def load_run(path) -> SweepRun | StudyRun:
    """One saved run: a sweep results folder or a transfer-study folder."""
    path = Path(path)
    if not path.is_dir():
        raise CatchjaxError(f"{path} is not a folder of a catchjax run")
    if (path / "study.json").exists():
        spec = _read_json(path / "study.json", "a transfer study")
        if not isinstance(spec.get("spec"), dict):
            raise CatchjaxError(f"{path / 'study.json'} has no study spec; it is damaged or "
                                f"not a catchjax transfer study")
        result = {}
        for name in ("cells", "curves", "crossover"):
            f = path / f"{name}.csv"
            if not f.exists():
                raise CatchjaxError(f"{path} has no {name}.csv: the study has not finished "
                                    f"(rerun its command to resume it)")
            rows = list(csv.DictReader(io.StringIO(f.read_text(errors="replace"))))
            need = _STUDY_COLUMNS[name]
            if not rows or any(None in r or not need <= set(r) or None in r.values()
                               for r in rows):
                raise CatchjaxError(f"{f} is damaged (missing columns or fields; it needs "
                                    f"{', '.join(sorted(need))}): rerun the study's command "
                                    f"to rewrite it from its stages")
            result[name] = [{k: _number(v) for k, v in r.items()} for r in rows]
        return StudyRun(path, spec, result)
    if not (path / "summary.json").exists():
        raise CatchjaxError(f"{path} holds neither a sweep (summary.json) nor a transfer "
                            f"study (study.json)")
    s = _read_json(path / "summary.json", "a sweep")
    _check_summary(path, s)
    curves = _sweep_curves(path, s)
    mean = float(curves[:, -1].mean())
    if not np.isclose(mean, float(s["mean"]), rtol=1e-6, atol=1e-9):
        raise CatchjaxError(f"{path}: results table and summary.json disagree (mean final "
                            f"{mean:.6g} vs {float(s['mean']):.6g}); the files are from "
                            f"different runs")
    return SweepRun(path, s, curves)


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _labels(runs: list[SweepRun]) -> dict[int, str]:
    """Method names, with the folder name where two runs share one."""
    names = [r.summary["method"] for r in runs]
    return {id(r): (n if names.count(n) == 1 else f"{n} ({r.path.name})")
            for r, n in zip(runs, names)}


def _sweep_section(bench, task, metric, group, rows) -> list[str]:
    """The report's table of one benchmark, task and reported metric; each run's CSV row is
    appended to ``rows``."""
    from catchjax.benchmarks.names import display_name, task_title

    lines = []
    group = sorted(group, key=lambda r: -float(r.summary["mean"]))
    labels = _labels(group)
    protocols = sorted({str((r.summary.get("task_spec") or {}).get("protocol"))
                        for r in group} - {"None"})
    lines += ["", f"## {bench} / {task} — {task_title(bench, task)}: "
              f"{display_name(metric)} of the chosen network (`{metric}`)"
              + (f", protocol {', '.join(protocols)}" if protocols else ""), "",
              "| method | searched reward | seed | trials × budget | mean ± std [95% CI] "
              "| table's best found | vs the best by mean: difference [95% CI], "
              "Mann-Whitney U p | compile s | run s | device |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in group:
        s, row = r.summary, r.row()
        rows.append(row)
        best = (f"{s['best_hits']}/{s['trials']}" if s.get("best_hits") is not None
                else "")
        agents = f" ({s['agents']} agents)" if s.get("agents") else ""
        reward = s.get("reward_metric")
        reward = f"{display_name(reward)} (`{reward}`)" if reward else ""
        lines.append(
            f"| {labels[id(r)]} | {reward} | {s.get('seed', '')} | {s['trials']} × "
            f"{s['budget']}{agents} | {s['mean']:.4g} ± "
            f"{s['std']:.3g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}] | {best} | "
            f"{_versus(group[0], r)} | "
            f"{_fmt(s.get('compile_seconds'))}{_compile_mark(s)} | {_fmt(s.get('wall_seconds'))} | "
            f"{s.get('device', '')} |")
    # a summary written before ci_method existed: the rule analysis has always used
    # up to 100,000 trials (beyond that, older catchjax ran out of memory)
    methods_ci = sorted({str(r.summary.get("ci_method")
                             or analysis.ci_method(int(r.summary["trials"])))
                         for r in group})
    lines += ["", COMPARISON_NOTE + f" 95% CI of each row: {'; '.join(methods_ci)}."]
    return lines


def build(paths, out, mix: bool = False, overwrite: bool = False) -> dict:
    """Write the report of the runs in ``paths`` into ``out``; returns what it used."""
    if not paths:
        raise CatchjaxError("name at least one run folder")
    safe_io.check_output_dir(out, overwrite, owned=REPORT_FILES, marker="report.md",
                             what="report")
    runs = [load_run(p) for p in paths]
    seen = {}
    for r in runs:
        key = r.path.resolve()
        if key in seen:
            raise CatchjaxError(f"{r.path} is named twice")
        seen[key] = r
    sweeps = [r for r in runs if isinstance(r, SweepRun)]
    studies = [r for r in runs if isinstance(r, StudyRun)]
    groups: dict[tuple, list[SweepRun]] = {}
    for r in sweeps:
        groups.setdefault(r.group, []).append(r)
    if len(groups) > 1 and not mix:
        listed = "; ".join(f"{b}/{t} ({m}): {', '.join(str(x.path) for x in g)}"
                           for (b, t, m), g in groups.items())
        raise CatchjaxError(f"these runs are of different benchmarks, tasks or report "
                            f"metrics ({listed}); one table would compare unlike numbers. "
                            f"Report them separately, or pass --mix for one table per task")

    def fill(tmp: Path):
        lines = ["# catchjax report", "", "Runs used:", ""]
        lines += [f"* `{r.path}`" + (" (transfer study)" if isinstance(r, StudyRun) else "")
                  for r in runs]
        rows = []
        for (bench, task, metric), group in groups.items():
            lines += _sweep_section(bench, task, metric, group, rows)
        if rows:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            (tmp / "comparison.csv").write_text(buf.getvalue())
            _plot_sweeps(groups, tmp)
            lines += ["", "Plots (PNG, PDF and SVG with TrueType fonts): `fig3_sorted` "
                      "(final value of every trial, sorted; CATCH Fig. 3; band: 95% "
                      "distribution-free interval of each quantile), `best_so_far` (mean "
                      "best-so-far, 95% band), `regret` (the table's best minus the mean "
                      "best-so-far, log scale, 95% band); dashed: the table's best."]
        lines += pareto_report.section(sweeps, tmp, FIGURE_FORMATS)  # several objectives
        for st in studies:
            lines += _study_section(st, tmp)
        (tmp / "report.md").write_text("\n".join(lines) + "\n")

    where = safe_io.write_dir(out, fill, overwrite=overwrite, owned=REPORT_FILES,
                              marker="report.md", what="report")
    return {"out": where, "runs": [str(r.path) for r in runs], "groups": list(groups)}


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """``b`` against ``a`` (each trial's final value): the difference of the means with its
    95% interval (Welch's normal approximation) and the two-sided Mann-Whitney U test's p
    (trials are independent searches, not paired)."""
    from scipy.stats import mannwhitneyu

    diff = float(b.mean() - a.mean())
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))) if min(
        len(a), len(b)) > 1 else float("nan")
    p = float(mannwhitneyu(b, a, alternative="two-sided").pvalue) if (
        np.ptp(np.concatenate([a, b])) > 0) else 1.0
    return diff, diff - 1.96 * se, diff + 1.96 * se, p


def _versus(first: SweepRun, r: SweepRun) -> str:
    if r is first:
        return "(the first: the best by mean)"
    diff, lo, hi, p = compare(first.finals, r.finals)
    return f"{diff:+.3g} [{lo:+.3g}, {hi:+.3g}], p = {p:.2g}"


def _compile_mark(s: dict) -> str:
    """After the compile seconds of a search whose program it did not compile."""
    return {"loaded": " (loaded)", "reused": " (reused)"}.get(str(s.get("compile_source")), "")


def _fmt(x) -> str:
    return "" if x is None else f"{float(x):.3g}"


def quantile_band(finals: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """For the sorted final values x_(1) <= ... <= x_(n), a distribution-free interval of
    each plotted quantile q_i = i / (n + 1): the order statistics x_(l), x_(u) with l, u
    the binomial(n, q_i) quantiles (the number of trials below the true quantile is
    binomial). Closed form, O(n): no resampling at any trial count."""
    from scipy.stats import binom

    x = np.sort(np.asarray(finals, np.float64))
    n = len(x)
    q = np.arange(1, n + 1) / (n + 1)
    lo = np.clip(binom.ppf((1 - level) / 2, n, q).astype(int) - 1, 0, n - 1)
    hi = np.clip(binom.ppf((1 + level) / 2, n, q).astype(int), 0, n - 1)
    return x[lo], x[hi]


def _plot_sweeps(groups: dict, out: Path) -> None:
    """Three figures, one panel per (benchmark, task, metric), sized for one column of a
    two-column paper per panel; titles and axes in words; every curve with its 95% band;
    PDFs with TrueType (Type 42) fonts, which venues that refuse Type 3 accept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        for name in FIGURES:
            fig, axes = plt.subplots(1, len(groups), figsize=(3.4 * len(groups), 2.7),
                                     squeeze=False)
            for ax, (key, group) in zip(axes[0], groups.items()):
                _panel(ax, name, key, group)
            fig.tight_layout()
            for fmt in FIGURE_FORMATS:
                fig.savefig(out / f"{name}.{fmt}", dpi=200)
            plt.close(fig)


def _panel(ax, name: str, key: tuple, group: list) -> None:
    import textwrap

    import matplotlib.ticker

    from catchjax.benchmarks.names import display_name, task_title

    bench, task, metric = key
    labels = _labels(group)
    best = group[0].summary.get("table_best")
    label = "\n".join(textwrap.wrap(display_name(metric), 36))  # fits the panel
    low, starts = [], []
    for r in group:
        c = r.curves
        if name == "fig3_sorted":
            ranks = np.arange(1, len(c) + 1)
            line, = ax.plot(ranks, np.sort(r.finals), label=labels[id(r)], lw=1.2)
            if len(c) > 1:
                lo, hi = quantile_band(r.finals)
                ax.fill_between(ranks, lo, hi, alpha=0.2, color=line.get_color(), lw=0)
            continue
        steps = np.arange(1, c.shape[1] + 1)
        mean = c.mean(axis=0)
        half = (1.96 * c.std(axis=0, ddof=1) / np.sqrt(len(c)) if len(c) > 1
                else np.zeros_like(mean))
        if name == "regret":
            if best is None:
                continue
            gap = best - mean
            shown = gap > 0  # a zero regret (every trial found the best) has no log
            line, = ax.plot(steps[shown], gap[shown], label=labels[id(r)], lw=1.2)
            # the band of the mean's interval, floored where it reaches zero regret
            floor = 0.5 * gap[shown].min() if shown.any() else 1.0
            ax.fill_between(steps[shown], np.maximum(gap - half, floor)[shown],
                            (gap + half)[shown], alpha=0.2, color=line.get_color(), lw=0)
            continue
        line, = ax.plot(steps, mean, label=labels[id(r)], lw=1.2)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.2, color=line.get_color(),
                        lw=0)
        low.append(mean[min(len(mean) - 1, max(1, len(mean) // 10))])
        starts.append(float((mean - half).min()))
    if best is not None and name != "regret":
        ax.axhline(best, ls="--", lw=0.8, color="0.4", label="table's best")
    if name == "best_so_far" and low and best is not None:
        # start the axis where the methods are apart, not at the first random draws, and
        # say so where a curve starts below the frame
        bottom = min(low)
        ax.set_ylim(bottom - 0.05 * (best - bottom), best + 0.05 * (best - bottom))
        if min(starts) < ax.get_ylim()[0]:
            ax.annotate(f"curves start below the frame (lowest {min(starts):.4g})",
                        xy=(0.02, 0.02), xycoords="axes fraction", fontsize=5.5,
                        color="0.3", ha="left", va="bottom",
                        bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})
    if name == "regret":
        ax.set_yscale("log")
        plain = matplotlib.ticker.FormatStrFormatter("%g")  # 0.6, not 6 x 10^-1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_title("\n".join(textwrap.wrap(task_title(bench, task), 48)), fontsize=8)
    ax.set_xlabel("trials, sorted by result" if name == "fig3_sorted"
                  else "networks evaluated", fontsize=8)
    ax.set_ylabel({"fig3_sorted": label, "best_so_far": f"best so far:\n{label}",
                   "regret": "regret:\ntable's best − best so far"}[name], fontsize=7)
    ax.tick_params(which="both", labelsize=6)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    ax.legend(fontsize=6)


def _study_section(st: StudyRun, out: Path) -> list[str]:
    from types import SimpleNamespace

    from catchjax.studies import transfer, transfer_plots

    spec = SimpleNamespace(**st.summary["spec"])
    sub, k = out / "transfer" / st.path.name, 1
    while sub.exists():  # two studies in folders of the same name
        k += 1
        sub = out / "transfer" / f"{st.path.name}-{k}"
    sub.mkdir(parents=True)
    transfer_plots.plot_all(sub, st.result, spec)
    lines = ["", f"## Transfer study `{st.path}`: {spec.method} on {spec.benchmark}, "
             f"T = {spec.steps:,}, seeds {list(spec.seeds)}", "",
             f"Heatmaps, curves and crossover in `transfer/{sub.name}/`.", ""]
    for regime in transfer.REGIMES:
        lines += ["```", transfer.format_matrix(st.result, spec, regime), "```"]
    return lines
