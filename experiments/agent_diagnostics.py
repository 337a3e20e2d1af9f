"""What each meta-trained CATCH agent learned (issue 19): for every agent of a study, how
broad its controller is at the start and the end of adaptation, where the networks it
proposes first rank under the target's reward, and whether its context z tells the target
from the pool's tasks. Used by nb201_catch.py (and so transnas_catch.py); one plot per
study.

Per agent (the trials i with i mod N = agent, see catchjax.runs.sweeps.agent_of_trial):

* ``entropy_first`` / ``entropy_last``: the controller's entropy over whole architectures
  (nats, Monte-Carlo over its M candidates) at the first and last search epoch, mean over
  the agent's trials; ``candidates_first`` / ``_last``: distinct candidates among M.
* ``first_rank_median``: the rank (1 = best, ties share the best rank) under the
  target's reward, among the searchable networks, of the first network the controller
  proposes after the random seeds, median over trials; ``first_distinct``: how many
  different first proposals.
* ``z_separation`` (learned context only): the encoder's posterior mean after a trial's
  whole history on the target, against the same networks scored by each pool task
  (what z would be if the task were a pool task): the distance between the two mean z,
  in units of the within-target std. Near 0: z does not tell the target from the pool.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import ppo
from catchjax.methods import catch
from catchjax.runs import agent as agents


def posterior_means(config, params, task, rows, rewards):
    """The encoder's posterior mean of z after each history, [T, z_dim] (rows, rewards:
    [T, H]); one compiled function per config and shape, shared by every agent and task
    (the networks' parameters and the task's rows are arguments, not constants)."""
    return np.asarray(_posterior_means(config, task.space.n_choices, params,
                                       task.arrays.row_actions, jnp.asarray(rows),
                                       jnp.asarray(rewards)))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _posterior_means(config, K: int, params, row_actions, rows, rewards):
    L = row_actions.shape[1]
    nets = catch.make_networks(config, L, K)
    H = rows.shape[1]

    def one(r, rew):
        mask = jnp.ones(H, bool)
        onehot = jax.nn.one_hot(row_actions[r], K).reshape(H, L * K)
        ctx = jnp.concatenate([onehot, ppo.normalize(rew, mask)[:, None]], axis=1)
        mu, _ = nets.encoder.apply(params["encoder"], ctx, mask)
        return mu

    return jax.vmap(one)(rows, rewards)


def target_ranks(task) -> np.ndarray:
    """[n_archs] rank of each searchable network under the task's reward: 1 + the number
    of searchable networks with a higher reward (ties share the best rank); others 0."""
    from scipy.stats import rankdata

    reward = np.asarray(task.arrays.reward, np.float64)
    ok = task.searchable
    ranks = np.zeros(len(reward), np.int64)
    ranks[ok] = rankdata(-reward[ok], method="min").astype(np.int64)
    return ranks


def diagnose(res, trained, method: str, target: str) -> list[dict]:
    """One record per agent of a sweep whose trials were shared among ``trained``."""
    task, config = res.task, res.config
    n = len(trained)
    which = np.arange(res.trials) % n
    ranks = target_ranks(task)
    reported = np.sort(np.asarray(task.arrays.report)[:, 0][task.searchable])
    first = catch.n_seeds(config)
    pool = agents.pool_rewards(task, trained[0].pool)
    out = []
    for a, t in enumerate(trained):
        mine = which == a
        rec = {"method": method, "target": target, "agent_seed": t.seed,
               "trials": int(mine.sum())}
        if mine.any():  # how often this agent's searches end on the table's best / a top-3
            # network by the reported column (as the study's hit counts)
            rec["best_found"] = float(np.mean(res.final_report[mine] >= reported[-1]))
            rec["top3"] = float(np.mean(res.final_report[mine] >= reported[-3]))
        for k, name in (("controller_entropy", "entropy"),
                        ("distinct_candidates", "candidates")):
            if k in res.metrics:
                v = np.asarray(res.metrics[k], np.float64)[mine]
                rec[f"{name}_first"], rec[f"{name}_last"] = (float(v[:, 0].mean()),
                                                            float(v[:, -1].mean()))
        if res.budget > first:
            proposed = res.rows[mine, first]
            rec["first_rank_median"] = float(np.median(ranks[proposed]))
            rec["first_distinct"] = int(len(np.unique(proposed)))
        if config.context == "learned":
            rows, rewards = res.rows[mine], res.rewards[mine]
            z_target = posterior_means(config, t.agent.params, task, rows, rewards)
            z_pool = np.concatenate([posterior_means(config, t.agent.params, task, rows,
                                                     pool[p][rows])
                                     for p in range(pool.shape[0])])
            within = float(z_target.std(axis=0).mean())
            gap = float(np.linalg.norm(z_target.mean(axis=0) - z_pool.mean(axis=0)))
            rec["z_separation"] = gap / max(within, 1e-12)
        out.append(rec)
    return out


FIELDS = ("method", "target", "agent_seed", "trials", "best_found", "top3", "entropy_first",
          "entropy_last", "candidates_first", "candidates_last", "first_rank_median",
          "first_distinct", "z_separation")


def write(records: list[dict], out: Path, title: str) -> None:
    """``agents.csv`` (one row per agent) and ``agents.png`` (one panel per measure, a
    dot per agent, targets along x, methods by colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    with open(out / "agents.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in records:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    if not records:
        return
    targets = list(dict.fromkeys(r["target"] for r in records))
    methods = list(dict.fromkeys(r["method"] for r in records))
    panels = [("entropy_first", "entropy_last", "controller entropy (nats)\n"
               "hollow: first epoch, filled: last", False),
              ("candidates_first", "candidates_last", "distinct candidates of M\n"
               "hollow: first epoch, filled: last", False),
              ("first_rank_median", None, "median rank of the first proposal\n"
               "(target's reward, 1 = best)", True),
              ("z_separation", None, "z: target vs pool tasks\n(distance / within-std)", False),
              ("best_found", "top3", "fraction of the agent's trials\nhollow: found the best, "
               "filled: a top-3", False)]
    fig, axes = plt.subplots(1, 5, figsize=(max(16.0, 3.0 * len(targets)), 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / max(len(methods), 1)
    for ax, (key, last, label, log) in zip(axes, panels):
        for j, m in enumerate(methods):
            for r in records:
                if r["method"] != m or key not in r:
                    continue
                x = targets.index(r["target"]) - 0.4 + width * (j + 0.5)
                x += (r["agent_seed"] % 5 - 2) * width * 0.12
                c = colours[j % len(colours)]
                if last is None:
                    ax.plot(x, r[key], "o", color=c, ms=4)
                else:
                    ax.plot(x, r[key], "o", mfc="none", color=c, ms=4)
                    ax.plot(x, r[last], "o", color=c, ms=4)
        ax.set_xlim(-0.5, len(targets) - 0.5)
        ax.set_xticks(range(len(targets)))
        ax.set_xticklabels(targets, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[j % len(colours)], label=m)
               for j, m in enumerate(methods)]
    fig.legend(handles=handles, loc="upper center", ncol=len(methods), fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=9, y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 0.94))
    fig.savefig(out / "agents.png", dpi=130)
    plt.close(fig)


def read(path) -> list[dict]:
    """The records of an ``agents.csv`` (numbers as numbers, empty cells left out)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rec = {}
            for k, v in row.items():
                if v == "":
                    continue
                rec[k] = v if k in ("method", "target") else float(v)
            rec["agent_seed"] = int(rec["agent_seed"])
            out.append(rec)
    return out


if __name__ == "__main__":  # redraw agents.png from an agents.csv
    import argparse

    ap = argparse.ArgumentParser(description="redraw agents.png from a study's agents.csv")
    ap.add_argument("csv")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", help="folder for agents.png (default: the CSV's)")
    a = ap.parse_args()
    records = read(a.csv)
    folder = Path(a.out or Path(a.csv).parent)
    folder.mkdir(parents=True, exist_ok=True)
    write(records, folder, a.title)
