"""Draws of one meta-trained study side by side: the paper's three NB201 claims (CIFAR-10
best found, CIFAR-100 top-3, ImageNet16-120 best found) per method and draw, and pooled
over the draws named with ``--pool`` (a bootstrap over all their agents' own rates).

A draw is another set of agents (other seeds) or the same seeds under other numerics;
the spread between draws is what one study's intervals must cover.

    python experiments/compare_draws.py \\
        --draw "seeds 0-19=runs/a/summary.json" --draw "seeds 20-39=runs/b/summary.json" \\
        --pool "seeds 0-19" "seeds 20-39" --out draws.md

``--versus DRAW:METHOD`` adds each row's difference from that row in points, with an
interval over the agents of both; a draw that lacks a method skips its rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from catchjax.runs.analysis import bootstrap_ci

CLAIMS = (("cifar10", "best", "CIFAR-10 best found"), ("cifar100", "top3", "CIFAR-100 top-3"),
          ("imagenet16-120", "best", "ImageNet16-120 best found"))
METHODS = ("catch-meta", "catch-zero", "catch-random")


def _pct(x) -> str:
    return f"{100 * x:.0f}"


def _rate_cell(rate: dict) -> str:
    lo, hi = rate["ci_trials"]
    alo, ahi = rate["ci_agents"]
    return f"{_pct(rate['rate'])}% [{_pct(lo)}–{_pct(hi)}] (agents {_pct(alo)}–{_pct(ahi)})"


def per_draw(runs: dict[str, dict]) -> list[str]:
    lines = ["| method | draw | " + " | ".join(c[2] for c in CLAIMS)
             + " | mean C-10 / C-100 / IN16 |", "|---|---|" + "---|" * (len(CLAIMS) + 1)]
    for method in METHODS:
        for name, study in runs.items():
            if not _has(study, method):
                continue
            cells = [_rate_cell(study[f"{method}/{ds}"]["rates"][kind]) for ds, kind, _ in CLAIMS]
            means = " / ".join(f"{study[f'{method}/{ds}']['mean']:.2f}" for ds, _, _ in CLAIMS)
            lines.append(f"| {method} | {name} | " + " | ".join(cells) + f" | {means} |")
    return lines


def _has(study: dict, method: str) -> bool:
    return all(f"{method}/{ds}" in study for ds, _, _ in CLAIMS)


def _agent_rates(study: dict, method: str, ds: str, kind: str) -> np.ndarray:
    return np.asarray(study[f"{method}/{ds}"]["rates"][kind]["agent_rates"], np.float64)


def versus(runs: dict[str, dict], ref: tuple[str, str], resamples: int = 10_000,
           seed: int = 0) -> list[str]:
    """Each (method, draw) row's mean agent rate minus the ``ref`` row's, with a 95%
    percentile interval from resampling both rows' agents independently (different
    seeds' agents are independent samples, not pairs: scipy's two-sample bootstrap)."""
    from scipy import stats

    def difference(x, y, axis=-1):
        return x.mean(axis=axis) - y.mean(axis=axis)

    rng = np.random.default_rng(seed)
    ref_draw, ref_method = ref
    lines = ["| method | draw | " + " | ".join(f"{c[2]}, minus {ref_method} ({ref_draw})"
                                               for c in CLAIMS) + " |",
             "|---|---|" + "---|" * len(CLAIMS)]
    for method in METHODS:
        for name, study in runs.items():
            if not _has(study, method) or (name, method) == (ref_draw, ref_method):
                continue
            cells = []
            for ds, kind, _ in CLAIMS:
                a = _agent_rates(study, method, ds, kind)
                b = _agent_rates(runs[ref_draw], ref_method, ds, kind)
                lo, hi = stats.bootstrap((a, b), difference, paired=False, vectorized=True,
                                         n_resamples=resamples, method="percentile",
                                         rng=rng).confidence_interval
                cells.append(f"{100 * (a.mean() - b.mean()):+.0f} [{100 * lo:+.0f}, "
                             f"{100 * hi:+.0f}]")
            lines.append(f"| {method} | {name} | " + " | ".join(cells) + " |")
    return lines


def pooled(runs: dict[str, dict], names: list[str]) -> list[str]:
    """Each agent's own rate (its trials are equally many), pooled over the draws; the
    interval is the studies' own bootstrap over those agents (``analysis.bootstrap_ci``,
    as ``nb201_catch.py``'s interval over one draw's agents)."""
    lines = [f"| method (pooled over {', '.join(names)}) | " + " | ".join(c[2] for c in CLAIMS)
             + " |", "|---|" + "---|" * len(CLAIMS)]
    for method in METHODS:
        if not all(_has(runs[n], method) for n in names):
            continue
        cells = []
        for ds, kind, _ in CLAIMS:
            rates = np.concatenate([runs[n][f"{method}/{ds}"]["rates"][kind]["agent_rates"]
                                    for n in names])
            lo, hi = bootstrap_ci(rates)
            cells.append(f"{_pct(rates.mean())}% (agents {_pct(lo)}–{_pct(hi)}, "
                         f"{rates.size} agents)")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def plot(runs: dict[str, dict], path: Path) -> None:
    """One panel per claim: each (method, draw) row's rate with its interval over the
    agents (thick) and over the trials (thin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(m, n) for m in METHODS for n in runs if _has(runs[n], m)]
    fig, axes = plt.subplots(1, len(CLAIMS), figsize=(4.2 * len(CLAIMS), 0.45 * len(rows) + 1.4),
                             sharey=True)
    for ax, (ds, kind, title) in zip(axes, CLAIMS):
        for y, (m, n) in enumerate(rows):
            r = runs[n][f"{m}/{ds}"]["rates"][kind]
            color = f"C{METHODS.index(m)}"
            ax.plot([100 * x for x in r["ci_trials"]], [y, y], color=color, lw=1)
            ax.plot([100 * x for x in r["ci_agents"]], [y, y], color=color, lw=4, alpha=0.5)
            ax.plot(100 * r["rate"], y, "o", color=color)
        ax.set_title(title)
        ax.set_xlabel("trials (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), [f"{m}, {n}" for m, n in rows])
    axes[0].invert_yaxis()
    fig.suptitle("rate of trials (dot) with its 95% interval over the trials (thin) and over "
                 "the agents' own rates (thick)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draw", action="append", required=True, metavar="NAME=SUMMARY_JSON",
                   help="a draw's name and its nb201_catch.py summary.json (repeat)")
    p.add_argument("--pool", nargs="*", default=[], metavar="NAME",
                   help="draws to pool (names given with --draw)")
    p.add_argument("--versus", metavar="DRAW:METHOD",
                   help="also each row's difference from this draw's method, in points, "
                        "with a bootstrap interval over both rows' agents")
    p.add_argument("--out", type=Path, help="write the tables here (default: print)")
    p.add_argument("--plot", type=Path, help="also draw the rates with their intervals (PNG)")
    args = p.parse_args(argv)
    runs = {}
    for spec in args.draw:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--draw takes NAME=SUMMARY_JSON, got {spec!r}")
        runs[name] = json.loads(Path(path).read_text())["runs"]
    unknown = [n for n in args.pool if n not in runs]
    if unknown:
        p.error(f"--pool names a draw not given with --draw: {', '.join(unknown)}")
    ref = None
    if args.versus:
        ref = tuple(args.versus.rsplit(":", 1))
        if len(ref) != 2 or ref[0] not in runs or not _has(runs[ref[0]], ref[1]):
            p.error(f"--versus takes DRAW:METHOD of a draw given with --draw that holds the "
                    f"method, got {args.versus!r}")
    lines = per_draw(runs)
    if ref:
        lines += [""] + versus(runs, ref)
    if args.pool:
        lines += [""] + pooled(runs, args.pool)
    if args.plot:
        plot(runs, args.plot)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
