"""CATCH vs random search vs regularized evolution with real training, through ask/tell.

The setting of CATCH §4.3 at CPU scale: the residual-block backbone space
(:mod:`catchjax.residual`), every proposed network trained in JAX for a few epochs on
scikit-learn's digits (8x8 grey images, 1,797 of them: 1,000 train / 397 validation /
400 test, a fixed split), reward R = P * (LAT / T)^w with P = validation accuracy, LAT the
measured median forward time of the compiled model on this machine (batch 1), w = -0.05.
Each search is an :class:`catchjax.asktell.search.AskTell` saved under ``OUT/searches/`` after
every ask and tell, so a killed run resumes where it stopped; an architecture is trained
once (``OUT/evaluations.json``) and its result reused by every method that proposes it.

    python experiments/real_training.py --out experiments/results/real_training

Writes ``results.csv`` (every evaluation), ``summary.md``, ``best_so_far.png`` and
``pareto.png`` (accuracy against latency of everything evaluated).
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
import optax

from catchjax import safe_io
from catchjax.asktell.search import AskTell
from catchjax.residual import decode, latency, model

METHODS = {
    "catch-sfs": {},
    "random": {},
    "rea": {"population": 5, "sample_size": 3},
}


def digits_splits(seed: int = 0):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    return (x[:1000], y[:1000]), (x[1000:1397], y[1000:1397]), (x[1397:], y[1397:])


def fit_adam(net, params, x, y, epochs: int, batch: int, lr: float):
    """``params`` after ``epochs`` epochs of Adam(``lr``) on softmax cross-entropy, in
    shuffled minibatches of ``batch`` (the last partial one dropped), as one compiled
    scan. The shuffles come from a fixed key, so a network trains the same every time."""
    opt = optax.adam(lr)
    x, y = jnp.asarray(x), jnp.asarray(y)
    n_batches = max(1, len(y) // batch)

    def loss(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xb), yb).mean()

    @jax.jit
    def fit(params, key):
        def epoch(carry, k):
            idx = jax.random.permutation(k, len(y))[: n_batches * batch]

            def step(carry, b):
                p, s = carry
                u, s = opt.update(jax.grad(loss)(p, x[b], y[b]), s, p)
                return (optax.apply_updates(p, u), s), None

            return jax.lax.scan(step, carry, idx.reshape(n_batches, -1))[0], None

        return jax.lax.scan(epoch, (params, opt.init(params)),
                            jax.random.split(key, epochs))[0][0]

    return jax.block_until_ready(fit(params, jax.random.key(1)))


class Trainer:
    """Trains a network of the residual space and measures it: validation and test
    accuracy after ``epochs`` epochs of Adam, and latency (batch 1)."""

    def __init__(self, epochs: int, width_scale: float, batch: int = 50, lr: float = 3e-3,
                 seed: int = 0):
        self.train, self.val, self.test = digits_splits(seed)
        self.epochs, self.width_scale, self.batch, self.lr = epochs, width_scale, batch, lr

    def __call__(self, actions) -> dict:
        spec = decode(actions)
        t0 = time.perf_counter()
        net, params = model.build(spec, 10, (8, 8, 1), width_scale=self.width_scale)
        params = fit_adam(net, params, self.train[0], self.train[1], self.epochs,
                          self.batch, self.lr)
        held = np.concatenate([self.val[0], self.test[0]])
        pred = np.asarray(jax.jit(lambda p, v: jnp.argmax(net.apply(p, v), -1))(params, held))
        n_val = len(self.val[1])
        val_acc = float(np.mean(pred[:n_val] == self.val[1]))
        test_acc = float(np.mean(pred[n_val:] == self.test[1]))
        train_seconds = time.perf_counter() - t0
        lat = latency.measure_latency(spec, (8, 8, 1), width_scale=self.width_scale,
                                      built=(net, params))
        n_params = int(sum(v.size for v in jax.tree.leaves(params)))
        return {"val_acc": val_acc, "test_acc": test_acc, "latency_ms": 1e3 * lat,
                "params": n_params, "train_seconds": train_seconds}


def run_search(method, seed, args, trainer, evaluations, out: Path) -> list[dict]:
    folder = out / "searches" / f"{method}-seed{seed}"
    if folder.exists():
        search = AskTell.load(folder, method=method, space="residual")
    else:
        search = AskTell.start(method, "residual", budget=args.budget, seed=seed,
                               state_dir=folder, **METHODS[method])
    for p in [p for p in search.log if p["reward"] is None]:  # asked before a crash
        search.tell([p["id"]], [reward_of(evaluate(p, trainer, evaluations, out), args)])
    while proposals := search.ask(args.k):
        results = [evaluate(p, trainer, evaluations, out) for p in proposals]
        search.tell([p["id"] for p in proposals], [reward_of(r, args) for r in results],
                    extras=results)
        best = search.best()
        print(f"{method} seed {seed}: {search.n_asked}/{args.budget}, best {best['arch']} "
              f"R={best['reward']:.4f}", flush=True)
    return [{"method": method, "seed": seed, "id": p["id"], "arch": p["arch"],
             "reward": p["reward"], **evaluations[p["arch"]]} for p in search.log]


def reward_of(result: dict, args) -> float:
    return float(latency.latency_aware_reward(result["val_acc"], result["latency_ms"],
                                              args.latency_target_ms, args.weight))


def evaluate(proposal, trainer, evaluations, out: Path) -> dict:
    arch = proposal["arch"]
    if arch not in evaluations:
        evaluations[arch] = trainer(proposal["actions"])
        safe_io.atomic_write_bytes(out / "evaluations.json",
                                   json.dumps(evaluations, indent=1).encode())
    return evaluations[arch]


def write_outputs(rows: list[dict], out: Path, args, seconds: float,
                  trained: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Real training through ask/tell: CATCH vs random search vs regularized evolution",
        "",
        f"Residual-block space (37,320 networks), digits 8x8, {args.epochs} epochs per "
        f"network, width scale {args.width_scale}, reward = val acc x (LAT / "
        f"{args.latency_target_ms} ms)^{args.weight}; budget {args.budget} per search, "
        f"seeds {args.seeds}; on {jax.devices()[0].device_kind} "
        f"({jax.devices()[0].platform}). Training time of the {len(trained)} distinct "
        f"networks: {sum(r['train_seconds'] for r in trained.values()) / 60:.1f} min; "
        f"this run (resumed parts excluded): {seconds / 60:.1f} min.",
        "",
        "| method | seed | best reward | its val acc | its test acc | its latency (ms) | "
        "distinct archs |",
        "|---|---|---|---|---|---|---|",
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    means = ["", "| method | searches | best reward, mean ± std | test acc of the best, mean ± "
             "std | evaluations to reach 0.96 (searches that did) |", "|---|---|---|---|---|"]
    for method in METHODS:
        curves, bests = [], []
        for seed in range(args.seeds):
            mine = [r for r in rows if r["method"] == method and r["seed"] == seed]
            if not mine:
                continue
            best = max(mine, key=lambda r: r["reward"])
            bests.append(best)
            lines.append(f"| {method} | {seed} | {best['reward']:.4f} | {best['val_acc']:.3f} | "
                         f"{best['test_acc']:.3f} | {best['latency_ms']:.3f} | "
                         f"{len({r['arch'] for r in mine})} |")
            curves.append(np.maximum.accumulate([r["reward"] for r in mine]))
        if not curves:
            continue
        n = min(len(c) for c in curves)
        c = np.asarray([c[:n] for c in curves])
        x = np.arange(1, n + 1)
        ax.plot(x, c.mean(0), label=f"{method} (mean of {len(c)})")
        ax.fill_between(x, c.min(0), c.max(0), alpha=0.2)
        reach = [int(np.argmax(k >= 0.96)) + 1 for k in c if k[-1] >= 0.96]
        r, t = [b["reward"] for b in bests], [b["test_acc"] for b in bests]
        means.append(f"| {method} | {len(c)} | {np.mean(r):.4f} ± {np.std(r):.4f} | "
                     f"{np.mean(t):.3f} ± {np.std(t):.3f} | "
                     f"{', '.join(map(str, reach)) or '-'} ({len(reach)} of {len(c)}) |")
    lines += means
    finish(fig, ax, "networks trained", "best reward so far (band: min-max over searches)",
           out / "best_so_far.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in zip(METHODS, "o^s"):
        mine = [r for r in rows if r["method"] == method]
        ax.scatter([r["latency_ms"] for r in mine], [r["val_acc"] for r in mine],
                   marker=marker, alpha=0.6, label=method)
    pts = sorted({(r["latency_ms"], r["val_acc"]) for r in rows})
    front, top = [], -1.0
    for lat, acc in pts:  # the accuracy/latency Pareto front of everything evaluated
        if acc > top:
            front.append((lat, acc))
            top = acc
    ax.step(*zip(*front), where="post", color="k", lw=1, label="Pareto front")
    finish(fig, ax, "latency (ms, batch 1, median)", "validation accuracy", out / "pareto.png")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def finish(fig, ax, xlabel, ylabel, path) -> None:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="experiments/results/real_training")
    ap.add_argument("--budget", type=int, default=25, help="networks trained per search")
    ap.add_argument("--seeds", type=int, default=1, help="searches per method")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--width-scale", type=float, default=0.125)
    ap.add_argument("-k", type=int, default=1, help="proposals asked at a time")
    ap.add_argument("--latency-target-ms", type=float, default=1.0)
    ap.add_argument("--weight", type=float, default=-0.05)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    evaluations = {}
    if (out / "evaluations.json").exists():
        evaluations = json.loads((out / "evaluations.json").read_text())
    trainer = Trainer(args.epochs, args.width_scale)
    t0 = time.time()
    rows = []
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            rows += run_search(method, seed, args, trainer, evaluations, out)
    write_outputs(rows, out, args, time.time() - t0, evaluations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
