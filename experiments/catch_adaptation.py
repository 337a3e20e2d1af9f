"""Why does meta-trained CATCH collapse onto the pool's cells, and what restores
adaptation? (issue 8, part 3)

For each variant of CATCH-meta's settings and each target: meta-train --agents agents
(vmapped, seeds seed..), adapt --trials trials shared among them, and record the search
objective (the best 12-epoch reward found; variants are compared on it, never on the
200-epoch test accuracy, which is reported only), the spread across agents, how many
different networks a search asked, the number of distinct chosen networks, the
controller's entropy (and its trajectory over the search, entropy.png) and distinct
candidates at the first and last search epoch, and what z does: the encoder's posterior
mean after the last epoch, its spread within a target and the distance between targets'
means.

    CATCHJAX_DATA=../shared/data python experiments/catch_adaptation.py --out runs/adapt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from catchjax import make_task, methods, sweep
from catchjax.runs import agent as agents
from catchjax.runs.analysis import bootstrap_ci

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.agent_diagnostics import posterior_means  # noqa: E402
from experiments.nb201_catch import describe  # noqa: E402

VARIANTS = {
    # the defaults of the day: since issue 32 they skip asked networks and draw candidates
    # at a temperature going to 0.2; catch_adaptation.md's rows ran before, without either
    "default": {},
    "entropy 0 (the paper's loss)": {"entropy_coef": 0.0},
    "entropy 0.01": {"entropy_coef": 0.01},
    "entropy 0.05": {"entropy_coef": 0.05},
    "fresh Adam at adaptation": {"reset_optimizer": True},
    "KL weight 1.0": {"beta_kl": 1.0},
    "10 initial networks": {"n_initial": 10},
    "entropy 0.2": {"entropy_coef": 0.2},
    "entropy 0.5": {"entropy_coef": 0.5},
    "entropy 0.2 + fresh Adam": {"entropy_coef": 0.2, "reset_optimizer": True},
    "entropy 0.05 + 10 initial": {"entropy_coef": 0.05, "n_initial": 10},
    # PEARL's meta-batch: every gradient step on B pool tasks at once (B searches in
    # lockstep) instead of one pool task per meta-epoch; 12 meta-epochs of 2 tasks query
    # the pool about as often (480) as the default 25 of one (500)
    "meta-batch 2": {"meta_batch": 2},
    "meta-batch 2, 12 meta-epochs": {"meta_batch": 2, "meta_epochs": 12},
    "entropy 0.5 + meta-batch 2": {"entropy_coef": 0.5, "meta_batch": 2},
    "meta-batch 3": {"meta_batch": 3},  # TransNAS pools hold six tasks
    "entropy 0.5 + meta-batch 3": {"entropy_coef": 0.5, "meta_batch": 3},
    # issue 19: a new task per meta-epoch made from the pool (catch_meta.meta_task_rewards)
    "many tasks": {"meta_tasks": "mixtures"},
    "many tasks, 50 meta-epochs": {"meta_tasks": "mixtures", "meta_epochs": 50},
    "many tasks, paper's loss": {"meta_tasks": "mixtures", "entropy_coef": 0.0},
    # issue 32 item 2: explore first, concentrate later, with every setting spelled out
    # (the defaults changed with it): a schedule of the entropy bonus (0.5 -> 0 over each
    # search) or of the candidates' sampling temperature (1 -> T_end over each search,
    # CatchConfig.temperature_end; PPO keeps training pi itself), each with and without
    # never asking a network twice (CatchConfig.skip_evaluated; Algorithm 1 as written
    # re-asks, the more often the more the controller concentrates)
    "before issue 32: bonus 0.5, re-asks": {"skip_evaluated": False, "temperature_end": None},
    "re-asks + temperature -> 0.2": {"skip_evaluated": False, "temperature_end": 0.2},
    "re-asks + temperature -> 0.05": {"skip_evaluated": False, "temperature_end": 0.05},
    "re-asks + entropy 0.5 -> 0": {"skip_evaluated": False, "temperature_end": None,
                                   "entropy_coef_end": 0.0},
    "skip, bonus 0.5": {"skip_evaluated": True, "temperature_end": None},
    "skip + entropy 0.5 -> 0": {"skip_evaluated": True, "temperature_end": None,
                                "entropy_coef_end": 0.0},
    "skip + entropy 0.2": {"skip_evaluated": True, "temperature_end": None,
                           "entropy_coef": 0.2},
    "skip + paper's loss": {"skip_evaluated": True, "temperature_end": None,
                            "entropy_coef": 0.0},
    "skip + temperature -> 0.5": {"skip_evaluated": True, "temperature_end": 0.5},
    "skip + temperature -> 0.2 (default)": {"skip_evaluated": True, "temperature_end": 0.2},
    "skip + temperature -> 0.1": {"skip_evaluated": True, "temperature_end": 0.1},
}


def main(argv=None):
    from catchjax.cli import parse_setting

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/catch_adaptation")
    p.add_argument("--benchmark", default="nb201")
    p.add_argument("--targets", nargs="+", default=["cifar100", "imagenet16-120"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS)[:6])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--agents", type=int, default=20)  # issue 32: 20 agents per result
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool")
    p.add_argument("--method", default="catch-meta",
                   choices=["catch-meta", "catch-zero", "catch-random"],
                   help="the meta-trained CATCH method whose settings are varied")
    p.add_argument("--protocol", help="the task protocol (nb201: nats, catch-fig3)")
    p.add_argument("--set", type=parse_setting, action="append", default=[])
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_md, records, metrics = [], [], {}
    for name in args.variants:
        z_means = {}
        for target in args.targets:
            task = make_task(args.benchmark, target, protocol=args.protocol)
            metrics[target] = (task.spec.reward_metric, task.spec.report_metrics[0])
            settings = {**dict(args.set), **VARIANTS[name]}
            config = methods.make_config(args.method, budget=args.budget, **settings)
            seeds = [args.seed + a for a in range(args.agents)]
            trained = agents.train_many(args.method, task, config, seeds, pool=args.pool)
            res = sweep(config, task, trials=args.trials, budget=args.budget, seed=args.seed,
                        agent=[t.agent for t in trained])
            s = describe(res)
            which = np.arange(res.trials) % len(trained)  # trial i adapts agent i mod N
            objective = [float(res.best_reward[which == a, -1].mean())
                         for a in range(len(trained))]
            mus = np.concatenate([posterior_means(config, t.agent.params, task,
                                                  res.rows[which == a], res.rewards[which == a])
                                  for a, t in enumerate(trained)])
            z_means[target] = mus.mean(axis=0)
            rec = {"variant": name, "target": target, "settings": VARIANTS[name],
                   "objective_mean": float(np.mean(objective)),
                   "objective_agent_std": float(np.std(objective, ddof=1)),
                   "report_mean": s["mean"], "hits": s["best_hits"], "top3": s["top3"],
                   "distinct": s["distinct"],
                   # different networks a search asked, of its budget (repeats waste queries)
                   "asked_distinct": float(np.mean([len(np.unique(r)) for r in res.rows])),
                   "entropy_first": s.get("controller_entropy_first"),
                   "entropy_last": s.get("controller_entropy_last"),
                   "cands_first": s.get("distinct_candidates_first"),
                   "cands_last": s.get("distinct_candidates_last"),
                   "objective_agent_ci": list(bootstrap_ci(np.asarray(objective))),
                   "objective_trial_ci": list(bootstrap_ci(res.best_reward[:, -1])),
                   "entropy_curve": [float(v) for v in np.asarray(
                       res.metrics["controller_entropy"]).mean(axis=0)],
                   "z_within_std": float(mus.std(axis=0).mean())}
            records.append(rec)
            print(json.dumps(rec), flush=True)
        names = list(z_means)
        gaps = [float(np.linalg.norm(z_means[a] - z_means[b]))
                for i, a in enumerate(names) for b in names[i + 1:]]
        for rec in records:
            if rec["variant"] == name:
                rec["z_between_targets"] = float(np.mean(gaps)) if gaps else None
                lo, hi = rec["objective_trial_ci"]
                alo, ahi = rec["objective_agent_ci"]
                rows_md.append(
                    f"| {name} | {rec['target']} | {rec['objective_mean']:.2f} ± "
                    f"{rec['objective_agent_std']:.2f} [{lo:.2f}, {hi:.2f}] (agents "
                    f"{alo:.2f}–{ahi:.2f}) | {rec['asked_distinct']:.1f} | {rec['distinct']} | "
                    f"{rec['entropy_first']:.2f} → {rec['entropy_last']:.2f} | "
                    f"{rec['cands_first']:.0f} → {rec['cands_last']:.0f} | "
                    f"{rec['z_within_std']:.3f} / {rec['z_between_targets'] or 0:.3f} | "
                    f"{rec['report_mean']:.2f}, {rec['hits']} hits, top-3 {rec['top3']:.0%} |")
    reward_name = ", ".join(f"{t}: {m[0]}" for t, m in metrics.items())
    report_name = ", ".join(f"{t}: {m[1]}" for t, m in metrics.items())
    header = (f"{args.method}: {args.trials} trials × {args.budget} networks per cell, shared by "
              f"{args.agents} meta-trained agents (seeds {args.seed}..), benchmark "
              f"{args.benchmark}, protocol {args.protocol or 'default'}, pool "
              f"{args.pool or 'default'}. Objective = mean best reward "
              f"found ({reward_name}) ± std across agents, 95% bootstrap CI over trials "
              f"[..] and over the agents' means (..–..) (what variants are chosen on); z: "
              f"mean std of the posterior mean within a target / distance between the "
              f"targets' mean z; report = {report_name} (reported, not tuned on).\n\n"
              "| variant | target | objective | networks asked per search (of the budget) | "
              "distinct chosen | controller entropy first → "
              "last | distinct candidates (of M) | z within / between | report |\n"
              "|---|---|---|---|---|---|---|---|---|\n")
    (out / "adaptation.md").write_text(header + "\n".join(rows_md) + "\n")
    (out / "adaptation.json").write_text(json.dumps(records, indent=2))
    plot_entropy(records, out / "entropy.png", args)
    print(header + "\n".join(rows_md))
    return 0


def plot_entropy(records, path: Path, args):
    """The entropy of the candidates' distribution over each search (mean over trials;
    nats over whole architectures), one panel per target, a line per variant: solid
    where the variant skips asked networks, dashed where it re-asks them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from catchjax.benchmarks.names import task_title

    targets = list(dict.fromkeys(r["target"] for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, 20))[: max(len(variants), 1)]
    fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 3.8),
                             squeeze=False, sharey=True)
    for ax, target in zip(axes[0], targets):
        for rec in (r for r in records if r["target"] == target):
            curve = np.asarray(rec["entropy_curve"])
            first = args.budget - len(curve)  # the seeds come first and have no entropy
            skips = rec["settings"].get("skip_evaluated", True)
            default = "(default)" in rec["variant"]  # drawn in black, on top
            ax.plot(np.arange(first + 1, args.budget + 1), curve,
                    color="black" if default else colors[variants.index(rec["variant"])],
                    linestyle="-" if skips else "--", linewidth=2.4 if default else 1.4,
                    zorder=3 if default else 2,
                    label=rec["variant"] if target == targets[0] else None)
        ax.set_title(task_title(args.benchmark, target))
        ax.set_xlabel("Networks evaluated")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Entropy of the candidates (nats)")
    fig.legend(loc="lower center", ncol=min(4, len(variants)), fontsize=7, frameon=False)
    fig.suptitle(f"{args.method}: how concentrated the candidates are over the search "
                 f"({args.agents} agents per variant; dashed: re-asks known networks)")
    rows = -(-len(variants) // 4)
    fig.tight_layout(rect=(0, 0.05 * rows + 0.02, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
