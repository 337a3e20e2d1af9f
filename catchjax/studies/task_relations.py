"""`catchjax tasks`: how a benchmark's tasks relate (paper 002 §3.1-3.2, Figs. 1 and 4).

The Kendall-tau matrix between the tasks' validation metrics, and for each task the
gamma of R' = R^gamma that maximizes the spread (standard deviation) of its normalized
validation rewards (see :mod:`catchjax.studies.shaping` for the normalizations).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from catchjax import safe_io
from catchjax.benchmarks import tables
from catchjax.studies import shaping

GAMMAS = np.round(np.arange(0.05, 3.0001, 0.001), 3)
FILES = {"tasks.json", "kendall.csv", "kendall.png", "gamma_spread.csv", "gamma_spread.png"}


def compute(benchmark: str, table=None) -> dict:
    info = tables.benchmark_info(benchmark)
    table = table if table is not None else tables.load_table(benchmark)
    names = list(info.tasks)
    cols = {n: table.column(info.tasks[n].reward) for n in names}
    tau = shaping.kendall_matrix(cols)
    sweeps = {}
    for n in names:
        how = shaping.default_normalization(info.tasks[n].reward)
        g, spread, best = shaping.spread_sweep(cols[n], GAMMAS, how, info.tasks[n].reward)
        sweeps[n] = {"normalization": how, "gammas": g, "spread": spread, "best_gamma": best,
                     "spread_at_1": float(spread[np.argmin(np.abs(g - 1.0))]),
                     "spread_at_best": float(spread.max())}
    return {"benchmark": benchmark, "tasks": names,
            "metrics": [info.tasks[n].reward for n in names], "kendall": tau, "gamma": sweeps}


def format_report(res: dict) -> str:
    names = res["tasks"]
    w = max(len(n) for n in names) + 1
    lines = [f"Kendall tau between validation metrics ({res['benchmark']}):",
             " " * w + "".join(f"{n[:10]:>11s}" for n in names)]
    for i, n in enumerate(names):
        lines.append(f"{n:{w}s}" + "".join(f"{v:11.2f}" for v in res["kendall"][i]))
    lines.append("")
    lines.append("gamma maximizing the spread (std) of R^gamma of the normalized validation "
                 "metric:")
    for n in names:
        s = res["gamma"][n]
        lines.append(f"  {n:{w}s} gamma {s['best_gamma']:.3f} ({s['normalization']}): std "
                     f"{s['spread_at_1']:.4f} at gamma 1 -> {s['spread_at_best']:.4f}")
    return "\n".join(lines)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write(res: dict, out, overwrite: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = res["tasks"]

    def fill(tmp: Path):
        rows = ["task," + ",".join(names)] + [
            n + "," + ",".join(f"{v:.4f}" for v in res["kendall"][i]) for i, n in enumerate(names)]
        (tmp / "kendall.csv").write_text("\n".join(rows) + "\n")
        lines = ["task,normalization,gamma,spread"]
        for n in names:
            s = res["gamma"][n]
            lines += [f"{n},{s['normalization']},{g:.3f},{v:.6f}"
                      for g, v in zip(s["gammas"], s["spread"])]
        (tmp / "gamma_spread.csv").write_text("\n".join(lines) + "\n")
        fig, ax = plt.subplots(figsize=(7, 6))
        ax.imshow(res["kendall"], vmin=0, vmax=1, cmap="viridis")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{res['kendall'][i, j]:.2f}", ha="center", va="center",
                        color="w" if res["kendall"][i, j] < 0.6 else "k", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_title(f"Kendall tau between validation metrics ({res['benchmark']})")
        (tmp / "kendall.png").write_bytes(_png(fig))
        fig, ax = plt.subplots(figsize=(7, 4))
        for n in names:
            s = res["gamma"][n]
            ax.plot(s["gammas"], s["spread"], label=f"{n} (best {s['best_gamma']:.3f})")
        ax.set_xlabel("gamma")
        ax.set_ylabel("std of normalized reward^gamma")
        ax.legend(fontsize=7)
        (tmp / "gamma_spread.png").write_bytes(_png(fig))
        summary = {"benchmark": res["benchmark"], "tasks": names, "metrics": res["metrics"],
                   "kendall": np.asarray(res["kendall"]).round(6).tolist(),
                   "best_gamma": {n: res["gamma"][n]["best_gamma"] for n in names}}
        (tmp / "tasks.json").write_text(json.dumps(summary, indent=2))

    return safe_io.write_dir(out, fill, overwrite=overwrite, owned=FILES, marker="tasks.json",
                             what="task relations")


def report(benchmark: str, out=None, overwrite: bool = False, table=None) -> str:
    if out is not None:
        safe_io.check_output_dir(out, overwrite, owned=FILES, marker="tasks.json",
                                 what="task relations")
    res = compute(benchmark, table)
    text = format_report(res)
    if out is not None:
        write(res, out, overwrite)
        text += f"\nwrote {out}/kendall.csv, kendall.png, gamma_spread.csv, gamma_spread.png"
    return text
