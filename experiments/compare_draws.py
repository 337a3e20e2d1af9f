"""Draws of one meta-trained study side by side: the paper's three NB201 claims (CIFAR-10
best found, CIFAR-100 top-3, ImageNet16-120 best found) per method and draw, and pooled
over the draws named with ``--pool`` (a bootstrap over all their agents' own rates).

A draw is another set of agents (other seeds) or the same seeds under other numerics;
the spread between draws is what one study's intervals must cover.

    python experiments/compare_draws.py \\
        --draw "seeds 0-19=runs/a/summary.json" --draw "seeds 20-39=runs/b/summary.json" \\
        --pool "seeds 0-19" "seeds 20-39" --out draws.md
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
            cells = [_rate_cell(study[f"{method}/{ds}"]["rates"][kind]) for ds, kind, _ in CLAIMS]
            means = " / ".join(f"{study[f'{method}/{ds}']['mean']:.2f}" for ds, _, _ in CLAIMS)
            lines.append(f"| {method} | {name} | " + " | ".join(cells) + f" | {means} |")
    return lines


def pooled(runs: dict[str, dict], names: list[str]) -> list[str]:
    """Each agent's own rate (its trials are equally many), pooled over the draws; the
    interval is the studies' own bootstrap over those agents (``analysis.bootstrap_ci``,
    as ``nb201_catch.py``'s interval over one draw's agents)."""
    lines = [f"| method (pooled over {', '.join(names)}) | " + " | ".join(c[2] for c in CLAIMS)
             + " |", "|---|" + "---|" * len(CLAIMS)]
    for method in METHODS:
        cells = []
        for ds, kind, _ in CLAIMS:
            rates = np.concatenate([runs[n][f"{method}/{ds}"]["rates"][kind]["agent_rates"]
                                    for n in names])
            lo, hi = bootstrap_ci(rates)
            cells.append(f"{_pct(rates.mean())}% (agents {_pct(lo)}–{_pct(hi)}, "
                         f"{rates.size} agents)")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draw", action="append", required=True, metavar="NAME=SUMMARY_JSON",
                   help="a draw's name and its nb201_catch.py summary.json (repeat)")
    p.add_argument("--pool", nargs="*", default=[], metavar="NAME",
                   help="draws to pool (names given with --draw)")
    p.add_argument("--out", type=Path, help="write the tables here (default: print)")
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
    lines = per_draw(runs)
    if args.pool:
        lines += [""] + pooled(runs, args.pool)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
