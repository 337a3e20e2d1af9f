"""CATCH §4.3 end to end at CPU scale: meta-training on real class-subset tasks through
ask/tell, then adaptation to held-out targets with the latency-aware reward (issue 24).

Data: scikit-learn's digits (8x8 grey images, 1,797), split once by a fixed permutation
into a **meta half** (the first 1,078 images) and a **target half** (the other 719). No
target image is ever in a meta-training task.

* Meta-training tasks (the paper's "new ImageNet sub-dataset of 10, 20 or 30 random
  classes every meta-epoch", here 3-6 random digit classes): meta-epoch m's task is
  ``subset_tasks(m, key)`` — random classes drawn from the key, the meta half's images
  of those classes, 70 % to train, 30 % to validate.
* Targets: ``digits`` (all ten classes of the target half: 400 train, 150 validation,
  169 test) and the held-out variant ``digits-rot90`` (the same images rotated by 90
  degrees, which no meta-task shows).
* Every proposed network of the residual space (:mod:`catchjax.residual`) is trained
  for ``--epochs`` epochs (Adam 3e-3, batch 50, width scale 0.125); reward R = P *
  (LAT / T)^w, P = validation accuracy, LAT = median batch-1 forward time measured on
  this machine, T = 1 ms, w = -0.05 (MnasNet's form, CATCH §4.3).

Agents: ``--agents`` CATCH-meta agents (seeds 0..), each meta-trained by
:class:`catchjax.asktell.meta.MetaTraining` (``--meta-epochs`` x ``--meta-budget``
networks). Then on each target ``--searches`` searches of ``--budget`` networks per
method: CATCH-meta (the searches shared round the agents), CATCH-sfs, random search,
REA. Every search is an AskTell folder under OUT (resumable); a network trained once on a
task is reused (``OUT/evaluations.json``). Writes ``summary.md``, ``results.csv``,
``best_so_far.png``.

    python experiments/meta_real_training.py --out experiments/results/meta_real_training
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import safe_io
from catchjax.asktell.meta import MetaTraining, named_tasks
from catchjax.asktell.search import AskTell
from catchjax.residual import decode, latency, model
from catchjax.runs import agent as agents

if __package__ in (None, ""):  # run as a script: make the repository root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.real_training import fit_adam  # noqa: E402

N_META = 1078  # images of the meta half; the rest is the target half
METHODS = ("catch-meta", "catch-sfs", "random", "rea")
SETTINGS = {"catch-meta": {}, "catch-sfs": {"n_initial": 3},
            "random": {}, "rea": {"population": 4, "sample_size": 3}}
TARGETS = ("digits", "digits-rot90")


def halves():
    """(meta images, meta labels), (target images, target labels): a fixed split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(y))
    meta, target = order[:N_META], order[N_META:]
    return (x[meta], y[meta], meta), (x[target], y[target], target)


# meta-epoch m's task: 3-6 random classes (drawn from its key) of the meta half's images
TASKS = "classes:10:3-6"
subset_tasks = named_tasks(TASKS)


def task_data(task: dict):
    """(train, val, test) splits of a task, each (x, y), and its number of classes. A
    meta task never holds a target-half image (tests/test_experiments.py checks)."""
    (mx, my, _), (tx, ty, _) = halves()
    if "classes" in task:
        keep = np.isin(my, task["classes"])
        x, y = mx[keep], np.searchsorted(task["classes"], my[keep]).astype(np.int32)
        cut = int(0.7 * len(y))
        return (x[:cut], y[:cut]), (x[cut:], y[cut:]), (x[cut:], y[cut:]), len(task["classes"])
    if task["target"] == "digits-rot90":
        tx = np.rot90(tx, 1, axes=(1, 2)).copy()
    return (tx[:400], ty[:400]), (tx[400:550], ty[400:550]), (tx[550:], ty[550:]), 10


class Trainer:
    """Trains a residual-space network on a task for a few epochs; validation and test
    accuracy, and the batch-1 latency (measured once per architecture)."""

    def __init__(self, epochs: int, width_scale: float, batch: int = 50, lr: float = 3e-3):
        self.epochs, self.width_scale, self.batch, self.lr = epochs, width_scale, batch, lr
        self.latencies: dict = {}

    def __call__(self, actions, task: dict) -> dict:
        (x, y), (vx, vy), (sx, sy), n_classes = task_data(task)
        spec = decode(actions)
        t0 = time.perf_counter()
        net, params = model.build(spec, n_classes, (8, 8, 1), width_scale=self.width_scale)
        params = fit_adam(net, params, x, y, self.epochs, self.batch, self.lr)
        predict = jax.jit(lambda p, v: jnp.argmax(net.apply(p, v), -1))
        val_acc = float(np.mean(np.asarray(predict(params, vx)) == vy))
        test_acc = float(np.mean(np.asarray(predict(params, sx)) == sy))
        seconds = time.perf_counter() - t0
        arch = tuple(int(a) for a in actions)  # latency depends on the network only
        if arch not in self.latencies:
            self.latencies[arch] = 1e3 * latency.measure_latency(
                spec, (8, 8, 1), width_scale=self.width_scale, built=(net, params))
        return {"val_acc": val_acc, "test_acc": test_acc,
                "latency_ms": self.latencies[arch], "train_seconds": seconds}


class Evaluations:
    """Results by (task, architecture), kept in OUT/evaluations.json (a network trained
    on a task once is reused by every search that proposes it)."""

    def __init__(self, out: Path, trainer: Trainer, args):
        self.path, self.trainer, self.args = out / "evaluations.json", trainer, args
        self.done = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.train_seconds = 0.0

    def reward(self, proposal: dict, task: dict) -> tuple[float, dict]:
        key = json.dumps(task, sort_keys=True) + "|" + proposal["arch"]
        if key not in self.done:
            t0 = time.perf_counter()
            self.done[key] = self.trainer(proposal["actions"], task)
            self.train_seconds += time.perf_counter() - t0
            safe_io.atomic_write_bytes(self.path, json.dumps(self.done).encode())
        r = self.done[key]
        return float(latency.latency_aware_reward(r["val_acc"], r["latency_ms"],
                                                  self.args.latency_target_ms,
                                                  self.args.weight)), r


def meta_train(seed: int, args, evals: Evaluations, out: Path):
    folder = out / "meta" / f"seed-{seed}"
    settings = dict(meta_epochs=args.meta_epochs, meta_budget=args.meta_budget, n_initial=3)
    meta = (MetaTraining.load(folder, subset_tasks) if folder.exists() else
            MetaTraining.start("residual", TASKS, seed=seed, state_dir=folder, **settings))
    for m, epoch in enumerate(meta.epochs):  # proposals asked before a crash
        search = meta._search(m)
        for p in [p for p in search.log if p["reward"] is None]:
            r, extra = evals.reward(p, epoch["task"])
            meta.tell([m * meta.meta_budget + p["id"]], [r], extras=[extra])
    while proposals := meta.ask(args.k):
        results = [evals.reward(p, p["task"]) for p in proposals]
        meta.tell([p["id"] for p in proposals], [r for r, _ in results],
                  extras=[e for _, e in results])
        print(f"meta seed {seed}: meta-epoch {proposals[0]['meta_epoch']} "
              f"{proposals[0]['task']}", flush=True)
    return meta.trained()


def run_search(method, target, search_id, agent, args, evals: Evaluations, out: Path):
    folder = out / "searches" / target / f"{method}-{search_id}"
    task = {"target": target}
    if folder.exists():
        search = AskTell.load(folder)
    else:
        search = AskTell.start(method, "residual", budget=args.budget, seed=search_id,
                               agent=agent, state_dir=folder, **SETTINGS[method])
    for p in [p for p in search.log if p["reward"] is None]:
        r, extra = evals.reward(p, task)
        search.tell([p["id"]], [r], extras=[extra])
    while proposals := search.ask(args.k):
        results = [evals.reward(p, task) for p in proposals]
        search.tell([p["id"] for p in proposals], [r for r, _ in results],
                    extras=[e for _, e in results])
    return [{"target": target, "method": method, "search": search_id, "id": p["id"],
             "arch": p["arch"], "reward": p["reward"], **p.get("extras", {})}
            for p in search.log]


def bootstrap_ci(values, seed=0):
    from scipy.stats import bootstrap

    values = np.asarray(values, np.float64)
    if len(values) < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    ci = bootstrap((values,), np.mean, confidence_level=0.95, random_state=seed,
                   method="percentile").confidence_interval
    return float(ci.low), float(ci.high)


def paired(rows, args, target: str, other: str, k: int):
    """CATCH-meta minus ``other`` in best reward after ``k`` networks, paired by search
    index (the CATCH methods' search s share their first random networks): mean, 95 %
    t-interval, and how many non-tied pairs CATCH-meta wins."""
    from scipy import stats

    diffs = []
    for s in range(args.searches):
        best = [max([r["reward"] for r in rows if r["target"] == target
                     and r["method"] == m and r["search"] == s][:k] or [np.nan])
                for m in ("catch-meta", other)]
        diffs.append(best[0] - best[1])
    d = np.asarray([x for x in diffs if np.isfinite(x)])
    if len(d) < 2:
        return float(d.mean()) if len(d) else float("nan"), (np.nan, np.nan), "-"
    lo, hi = (d.mean(), d.mean()) if d.std() == 0 else stats.t.interval(
        0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(len(d)))
    return float(d.mean()), (float(lo), float(hi)), f"{int((d > 0).sum())}/{int((d != 0).sum())}"


def write_outputs(rows, out: Path, args, timing: dict, trained) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(out / "results.csv", "w", newline="") as f:
        fields = ["target", "method", "search", "id", "arch", "reward", "val_acc", "test_acc",
                  "latency_ms", "train_seconds"]
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = ["| target | method | searches | best reward, mean (95% CI) | test acc of the "
             "best, mean ± std | best reward after 3 networks | per-agent means |",
             "|---|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(6.8, 2.9), squeeze=False)
    for ax, target in zip(axes[0], TARGETS):
        for method in METHODS:
            curves, tests, agent_of = [], [], []
            for s in range(args.searches):
                mine = [r for r in rows if r["target"] == target and r["method"] == method
                        and r["search"] == s]
                if not mine:
                    continue
                curve = np.maximum.accumulate([r["reward"] for r in mine])
                curves.append(curve)
                tests.append(max(mine, key=lambda r: r["reward"])["test_acc"])
                agent_of.append(s % args.agents)
            if not curves:
                continue
            c = np.asarray(curves)
            lo, hi = bootstrap_ci(c[:, -1])
            per_agent = ""
            if method == "catch-meta" and args.agents > 1:
                means = [c[np.asarray(agent_of) == a, -1].mean() for a in range(args.agents)
                         if np.any(np.asarray(agent_of) == a)]
                per_agent = ", ".join(f"{x:.4f}" for x in means)
            lines.append(f"| {target} | {method} | {len(c)} | {c[:, -1].mean():.4f} "
                         f"({lo:.4f}–{hi:.4f}) | {np.mean(tests):.3f} ± {np.std(tests):.3f} | "
                         f"{c[:, min(2, c.shape[1] - 1)].mean():.4f} | {per_agent or '-'} |")
            x = np.arange(1, c.shape[1] + 1)
            sem = c.std(0, ddof=1) / np.sqrt(len(c)) if len(c) > 1 else np.zeros(c.shape[1])
            ax.plot(x, c.mean(0), label=method)
            ax.fill_between(x, c.mean(0) - 1.96 * sem, c.mean(0) + 1.96 * sem, alpha=0.2)
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("networks trained on the target", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best reward so far\n(mean, 95% band)", fontsize=8)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "best_so_far.png", dpi=130)
    plt.close(fig)
    pairs = ["", "CATCH-meta minus each method, paired by search index, in best reward after "
             "5 and after all networks: mean [95% t-interval], non-tied searches CATCH-meta "
             "wins.", "", "| target | vs | after 5 | after "
             f"{args.budget} |", "|---|---|---|---|"]
    for target in TARGETS:
        for other in METHODS[1:]:
            cells = []
            for k in (5, args.budget):
                m, (lo, hi), wins = paired(rows, args, target, other, k)
                cells.append(f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}], wins {wins}")
            pairs.append(f"| {target} | {other} | {' | '.join(cells)} |")
    lines += pairs
    done = json.loads((out / "evaluations.json").read_text())
    meta_s = sum(v["train_seconds"] for k, v in done.items() if k.startswith('{"classes"'))
    all_s = sum(v["train_seconds"] for v in done.values())
    head = [
        f"Digits split into a meta half ({N_META} images) and a target half "
        f"({1797 - N_META}); meta-tasks: 3-6 random classes of the meta half; targets: "
        f"{', '.join(TARGETS)} (target half, ten classes). {args.epochs} epochs per network, "
        f"width scale {args.width_scale}, R = val acc x (LAT / {args.latency_target_ms} "
        f"ms)^{args.weight}. {args.agents} CATCH-meta agents, each {args.meta_epochs} "
        f"meta-epochs x {args.meta_budget} networks; {args.searches} searches x "
        f"{args.budget} networks per method and target (CATCH-meta's shared round the "
        f"agents). Device: {jax.devices()[0].device_kind}.",
        "",
        f"Wall time of this run: {timing['wall'] / 60:.1f} min, of which training networks "
        f"{timing['train'] / 60:.1f} min (meta-training {timing['meta_train'] / 60:.1f} "
        f"min, targets {timing['target_train'] / 60:.1f} min) and the searches' ask/tell "
        f"steps, compiling and saving {timing['search'] / 60:.1f} min (runs resumed from "
        f"OUT count only what this run did). All {len(done)} networks trained in OUT "
        f"(every run together): {all_s / 60:.1f} min of training, {meta_s / 60:.1f} of them "
        f"for meta-training.",
        "",
        "Meta-training tasks: " + "; ".join(
            f"agent {t.seed}: " + ", ".join(str(json.loads(p)["classes"]) for p in t.pool)
            for t in trained),
        "",
    ]
    (out / "summary.md").write_text("\n".join(head + lines) + "\n")
    print("\n".join(head + lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/meta_real_training")
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--meta-epochs", type=int, default=6)
    ap.add_argument("--meta-budget", type=int, default=8)
    ap.add_argument("--searches", type=int, default=4, help="searches per method and target")
    ap.add_argument("--budget", type=int, default=10, help="networks per target search")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--width-scale", type=float, default=0.125)
    ap.add_argument("-k", type=int, default=1, help="proposals asked at a time")
    ap.add_argument("--latency-target-ms", type=float, default=1.0)
    ap.add_argument("--weight", type=float, default=-0.05)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    evals = Evaluations(out, Trainer(args.epochs, args.width_scale), args)
    t0 = time.perf_counter()
    trained = []
    for seed in range(args.agents):
        trained.append(meta_train(seed, args, evals, out))
        agents.save_agent(out / "agents" / f"seed-{seed}", trained[-1], overwrite=True)
    meta_train_seconds = evals.train_seconds
    rows = []
    for target in TARGETS:
        for method in METHODS:
            for s in range(args.searches):
                agent = trained[s % args.agents] if method == "catch-meta" else None
                rows += run_search(method, target, s, agent, args, evals, out)
    wall = time.perf_counter() - t0
    timing = {"wall": wall, "train": evals.train_seconds, "meta_train": meta_train_seconds,
              "target_train": evals.train_seconds - meta_train_seconds,
              "search": wall - evals.train_seconds}
    write_outputs(rows, out, args, timing, trained)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
