"""Does CATCH's learned context do the work? On a task family designed so that it must
(issue 32; :mod:`catchjax.benchmarks.context_family`): six task types in opposite pairs,
three tasks each, on the NB201 cell. Each target task is searched by

* CATCH meta-trained on the other 17 tasks (its two siblings included) with the learned
  context at the paper's KL weight (beta 0.1) and at smaller ones, with z = 0
  (catch-zero), z ~ N(0, I) (catch-random) and the **oracle** z (the task itself,
  catch-oracle: the upper bound of what a context can give);
* CATCH from scratch, BANANAS and random search (no meta-training).

Every meta-trained method trains ``--agents`` agents (one vmapped call each) with the same
meta-training settings; trials go round the agents, so the table gives the CI over trials
and the spread over agents. The encoder's posterior mean is measured on random histories of
every task of the family: between-type distance / within-task spread.

Writes into --out: results.csv (one row per trial), curves.csv (mean best-so-far reward per
evaluation), agents.csv (per agent: mean final reward, entropy first/last, z separation),
summary.md, summary.json, curves.png (95% bands), z_map.png (z_means.npz: its points).

    python experiments/context_family.py --out experiments/results/context_family
Use --targets type0_a --agents 2 --meta-epochs 20 --trials 20 for a quick check.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import jax
import numpy as np

from catchjax import make_task, methods, sweep
from catchjax.benchmarks import context_family
from catchjax.cli import parse_setting
from catchjax.runs import agent as agents
from catchjax.runs.analysis import bootstrap_ci
from catchjax.runs.results import versions

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.agent_diagnostics import posterior_means  # noqa: E402

BENCHMARK = "synthetic-context"
# label -> (method, settings over its defaults)
VARIANTS = {
    "random": ("random", {}),
    "bananas": ("bananas", {}),
    "catch-sfs": ("catch-sfs", {}),
    "catch-zero": ("catch-zero", {}),
    "catch-random": ("catch-random", {}),
    "catch-meta (beta 0.1)": ("catch-meta", {"beta_kl": 0.1}),
    "catch-meta (beta 0.01)": ("catch-meta", {"beta_kl": 0.01}),
    "catch-meta (beta 0.001)": ("catch-meta", {"beta_kl": 0.001}),
    "catch-oracle": ("catch-oracle", {}),
}
HISTORIES = (5, 10, 20)
N_CHOICES = 5  # the NB201 cell's operations  # history sizes at which z's separation is measured


def z_separation(config, params, task, sizes=HISTORIES, draws=40, seed=0) -> dict:
    """Between-type distance / within-task spread of the encoder's posterior mean on
    ``draws`` random histories of each size, on every task of the family: the mean
    distance between the six types' centroids over the RMS distance of a history's z to
    its task's centroid. Also returns the means [tasks, draws, z_dim] at the largest size."""
    names = context_family.task_names()
    types = np.array([context_family.type_of(n) for n in names])
    rng = np.random.default_rng(seed)
    n = task.table.n_archs
    out = {}
    for h in sizes:
        rows = np.stack([rng.choice(n, h, replace=False) for _ in range(draws)])
        mus = np.stack([posterior_means(config, params, task, rows,
                                        task.table.columns[f"{t}__valid_score"][rows])
                        for t in names])
        centre = mus.mean(axis=1)
        within = float(np.sqrt(((mus - centre[:, None]) ** 2).sum(-1).mean()))
        typed = np.stack([centre[types == t].mean(axis=0) for t in np.unique(types)])
        pairs = [np.linalg.norm(typed[i] - typed[j]) for i in range(len(typed))
                 for j in range(i + 1, len(typed))]
        out[h] = float(np.mean(pairs)) / max(within, 1e-12)
    return {"ratio": out, "means": mus, "types": types}


def run(args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves, agent_rows, summary = [], [], [], {}
    z_maps = {}
    for target in args.targets:
        task = make_task(BENCHMARK, target)
        best = float(np.max(task.arrays.reward))
        for label in args.variants:
            method, settings = VARIANTS[label]
            # --set applies to the methods whose config has the setting (the CATCH family)
            accepted = set(methods.setting_names(method))
            settings = {**{k: v for k, v in args.set if k in accepted}, **settings}
            t0 = time.perf_counter()
            trained = None
            meta = methods.get(method).learner is not None
            if meta:
                config = methods.build(method, args.budget, meta_epochs=args.meta_epochs,
                                       meta_batch=args.meta_batch, **settings)
                trained = agents.train_many(method, task, config,
                                            seeds=list(range(args.agents)))
                res = sweep(config, task, trials=args.trials, seed=0,
                            agent=[t.agent for t in trained])
            else:
                res = sweep(method, task, trials=args.trials, budget=args.budget, seed=0,
                            **settings)
            seconds = time.perf_counter() - t0
            reached = np.maximum.accumulate(res.rewards, axis=1)
            final = reached[:, -1]
            pick = np.argmax(res.rewards, axis=1)
            test = np.asarray(task.arrays.report)[res.rows[np.arange(res.trials), pick], 0]
            n_agents = len(trained) if trained else 1
            which = np.arange(res.trials) % n_agents
            for i in range(res.trials):
                rows.append({"target": target, "variant": label, "trial": i,
                             "agent": int(which[i]), "final_reward": float(final[i]),
                             "final_test": float(test[i]),
                             "found_best": bool(final[i] >= best)})
            se = reached.std(axis=0, ddof=1) / np.sqrt(res.trials)
            for step in range(res.budget):
                curves.append({"target": target, "variant": label, "evaluations": step + 1,
                               "mean_best_reward": float(reached[:, step].mean()),
                               "se": float(se[step])})
            per_agent = [float(final[which == a].mean()) for a in range(n_agents)]
            entry = {"mean": float(final.mean()), "ci": bootstrap_ci(final),
                     "test_mean": float(test.mean()), "found_best": int((final >= best).sum()),
                     "trials": res.trials, "seconds": round(seconds, 1),
                     "agents": n_agents, "agent_means": per_agent,
                     "agent_ci": bootstrap_ci(np.asarray(per_agent)) if meta else None,
                     "task_best": best}
            if "controller_entropy" in res.metrics:
                ent = np.asarray(res.metrics["controller_entropy"], np.float64)
                first = np.argmax(np.any(ent != 0, axis=0))  # the seeds record no entropy
                entry["entropy_first"] = float(ent[:, first].mean())
                entry["entropy_last"] = float(ent[:, -1].mean())
            if meta and res.config.context == "learned":
                seps = []
                for a, t in enumerate(trained):
                    sep = z_separation(res.config, t.agent.params, task, seed=a)
                    seps.append(sep["ratio"])
                    agent_rows.append({"target": target, "variant": label, "agent": a,
                                       "mean_final_reward": per_agent[a],
                                       **{f"z_ratio_h{h}": r for h, r in sep["ratio"].items()}})
                    if a == 0:
                        z_maps[(target, label)] = sep
                entry["z_ratio"] = {h: float(np.mean([s[h] for s in seps])) for h in HISTORIES}
            elif meta:
                for a in range(n_agents):
                    agent_rows.append({"target": target, "variant": label, "agent": a,
                                       "mean_final_reward": per_agent[a]})
            summary.setdefault(target, {})[label] = entry
            print(f"{target:8s} {label:24s} {entry['mean']:.3f} [{entry['ci'][0]:.3f}, "
                  f"{entry['ci'][1]:.3f}]  best found {entry['found_best']}/{res.trials}"
                  f"  ({seconds:.0f} s)", flush=True)
    _write_csv(out / "results.csv", rows)
    _write_csv(out / "curves.csv", curves)
    _write_csv(out / "agents.csv", agent_rows)
    record = {"benchmark": BENCHMARK, "targets": list(args.targets), "trials": args.trials,
              "budget": args.budget, "agents": args.agents, "meta_epochs": args.meta_epochs,
              "meta_batch": args.meta_batch, "settings": dict(args.set),
              "variants": {k: VARIANTS[k] for k in args.variants},
              "results": summary, "versions": versions(),
              "device": f"{jax.default_backend()} x{jax.device_count()}"}
    (out / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "summary.md").write_text(_markdown(record))
    _plot(out, curves, z_maps, args)
    return record


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)


def _markdown(record: dict) -> str:
    lines = [f"# CATCH's context on the designed family ({record['benchmark']})", "",
             f"{record['trials']} trials x {record['budget']} networks per target; meta-trained "
             f"variants: {record['agents']} agents each ({record['meta_epochs']} meta-epochs of "
             f"{record['meta_batch']} tasks, pool = the 17 other tasks). Final = best "
             f"validation score found (the reward; standardized, the table's best is "
             f"`task_best`). CI: percentile bootstrap over trials; agents: mean [min, max] of "
             f"the agents' own means and the bootstrap CI over agents. z ratio: between-type "
             f"distance / within-task spread of the encoder's mean on random histories of "
             f"5 / 10 / 20 networks.", ""]
    for target, entries in record["results"].items():
        best = next(iter(entries.values()))["task_best"]
        lines += [f"## target {target} (best {best:.3f})", "",
                  "| variant | final | 95% CI (trials) | agents: mean [min, max] | CI (agents) "
                  "| best found | entropy first -> last | z ratio (5/10/20) |",
                  "|---|---|---|---|---|---|---|---|"]
        for label, e in entries.items():
            ag = e["agent_means"]
            agents_text = (f"{np.mean(ag):.3f} [{min(ag):.3f}, {max(ag):.3f}]"
                           if e["agent_ci"] is not None else "")
            agent_ci = (f"[{e['agent_ci'][0]:.3f}, {e['agent_ci'][1]:.3f}]"
                        if e["agent_ci"] is not None else "")
            ent = (f"{e['entropy_first']:.2f} -> {e['entropy_last']:.2f}"
                   if "entropy_first" in e else "")
            zr = " / ".join(f"{e['z_ratio'][h]:.2f}" for h in HISTORIES) if "z_ratio" in e else ""
            lines.append(f"| {label} | {e['mean']:.3f} | [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}] "
                         f"| {agents_text} | {agent_ci} | {e['found_best']}/{e['trials']} "
                         f"| {ent} | {zr} |")
        lines.append("")
    lines.append(f"versions: {json.dumps(record['versions'])}; device: {record['device']}")
    return "\n".join(lines) + "\n"


def _plot(out: Path, curves: list[dict], z_maps: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42
    import matplotlib.pyplot as plt

    targets = list(args.targets)
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for label in args.variants:
            pts = [(c["evaluations"], c["mean_best_reward"], c["se"]) for c in curves
                   if c["target"] == target and c["variant"] == label]
            if pts:
                x, y, se = map(np.asarray, zip(*pts))
                (line,) = ax.plot(x, y, label=label, lw=2 if label == "catch-oracle" else 1.2)
                ax.fill_between(x, y - 1.96 * se, y + 1.96 * se, color=line.get_color(),
                                alpha=0.15, lw=0)
        ax.set_title(f"context family, task {target}")
        ax.set_xlabel("networks evaluated")
        ax.set_ylabel("best validation score so far (std. units)\nmean, 95% band")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    fig.savefig(out / "curves.pdf")
    plt.close(fig)
    if not z_maps:
        return
    np.savez_compressed(out / "z_means.npz", **{  # the points of z_map, to redraw it
        f"{target}|{label}": sep["means"] for (target, label), sep in z_maps.items()},
        types=next(iter(z_maps.values()))["types"])
    targets = list(dict.fromkeys(t for t, _ in z_maps))
    labels = list(dict.fromkeys(lab for _, lab in z_maps))
    fig, axes = plt.subplots(len(targets), len(labels), squeeze=False,
                             figsize=(3.4 * len(labels), 3.1 * len(targets)))
    for (target, label), sep in z_maps.items():
        ax = axes[targets.index(target)][labels.index(label)]
        mus, types = sep["means"], sep["types"]
        flat = mus.reshape(-1, mus.shape[-1])
        centred = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = (centred @ vt[:2].T).reshape(mus.shape[0], mus.shape[1], 2)
        for t in np.unique(types):
            pts = xy[types == t].reshape(-1, 2)
            ax.scatter(pts[:, 0], pts[:, 1], s=3, label=f"type {t}")
        h = max(HISTORIES)
        ax.set_title(f"{label}, task {target}\nbetween / within = {sep['ratio'][h]:.2f} "
                     f"(histories of {h})", fontsize=8)
        ax.set_xlabel("z, first principal component", fontsize=7)
        ax.set_ylabel("z, second principal component", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][-1].legend(fontsize=6, markerscale=3)
    fig.tight_layout()
    fig.savefig(out / "z_map.png", dpi=110)
    fig.savefig(out / "z_map.pdf")
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/context_family")
    p.add_argument("--targets", type=lambda s: s.split(","), default=["type0_a", "type3_b"])
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--meta-epochs", type=int, default=300)
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--set", type=parse_setting, action="append", default=[],
                   help="KEY=VALUE for the CATCH variants (e.g. candidates=20)")
    args = p.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    bad = set(args.targets) - set(context_family.task_names())
    if bad:
        p.error(f"unknown targets {sorted(bad)}; tasks: {', '.join(context_family.task_names())}")
    return run(args)


if __name__ == "__main__":
    main()
