"""Tune a scikit-learn model in a space of one's own, through ask/tell (issue 22).

The space is declared as data (``catchjax.benchmarks.categorical``): an MLPClassifier's
hidden layers, L2 penalty, initial learning rate, activation and batch size, with one
forbidden combination. Every proposal's ``config`` is handed to scikit-learn; the reward
is the mean 3-fold cross-validated accuracy on the training part of a dataset that ships
with scikit-learn (breast cancer, 569 samples; or digits), and the best configuration of
each search is scored once on a held-out test part. Random search, regularized evolution,
local search, BANANAS and CATCH from scratch, ``--searches`` searches of ``--budget``
models each; a configuration is fitted once and reused by every search that proposes it.

    python experiments/sklearn_space.py --out runs/sklearn_space

Writes ``summary.md`` (best cross-validated accuracy per method, mean and bootstrap 95%
CI over searches, and the test accuracy of the chosen model) and ``best_so_far.png``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from catchjax.asktell.search import AskTell

SPACE = {
    "decisions": {
        "hidden_layer_sizes": ["16", "64", "256", "64,64", "128,64", "256,128"],
        "alpha": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
        "learning_rate_init": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
        "activation": ["relu", "tanh", "logistic"],
        "batch_size": [16, 64, 256],
    },
    # a large network with a tiny batch is slow to fit on a CPU: not worth trying
    "forbid": [{"hidden_layer_sizes": "256,128", "batch_size": 16}],
}
METHODS = {"random": {}, "rea": {"population": 5, "sample_size": 3}, "ls": {"n_initial": 5},
           "bananas": {"n_initial": 5, "batch": 2}, "catch-sfs": {"n_initial": 5}}


def dataset(name: str):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    load = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}[name]
    x, y = load(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def model(config: dict):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    layers = tuple(int(w) for w in config["hidden_layer_sizes"].split(","))
    return make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=layers, alpha=config["alpha"],
        learning_rate_init=config["learning_rate_init"], activation=config["activation"],
        batch_size=config["batch_size"], max_iter=60, random_state=0))


class Scores:
    """Cross-validated accuracy by configuration, fitted once."""

    def __init__(self, data):
        self.x, self.xt, self.y, self.yt = data
        self.cv: dict = {}
        self.seconds = 0.0

    def __call__(self, config: dict) -> float:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import cross_val_score

        key = json.dumps(config, sort_keys=True)
        if key not in self.cv:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.cv[key] = float(cross_val_score(model(config), self.x, self.y,
                                                     cv=3).mean())
            self.seconds += time.perf_counter() - t0
        return self.cv[key]

    def test(self, config: dict) -> float:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return float(model(config).fit(self.x, self.y).score(self.xt, self.yt))


def search(method: str, seed: int, args, scores: Scores) -> list[float]:
    s = AskTell.start(method, SPACE, budget=args.budget, seed=seed, **METHODS[method])
    while proposals := s.ask(args.k):
        s.tell([p["id"] for p in proposals], [scores(p["config"]) for p in proposals])
    best = s.best()
    return [p["reward"] for p in s.log], best


def main(argv=None) -> int:
    from scipy.stats import bootstrap

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/sklearn_space")
    ap.add_argument("--dataset", default="breast_cancer", choices=["breast_cancer", "digits"])
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("-k", type=int, default=1, help="proposals asked at a time")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores = Scores(dataset(args.dataset))
    t0 = time.perf_counter()
    curves, lines = {}, []
    for method in args.methods.split(","):
        bests, tests, runs = [], [], []
        for seed in range(args.searches):
            rewards, best = search(method, seed, args, scores)
            runs.append(np.maximum.accumulate(rewards))
            bests.append(best["reward"])
            tests.append(scores.test(best["config"]))
        curves[method] = np.asarray(runs)
        b = np.asarray(bests)
        lo, hi = (b[0], b[0]) if np.ptp(b) == 0 else bootstrap(
            (b,), np.mean, random_state=0, method="percentile").confidence_interval
        lines.append(f"| {method} | {b.mean():.4f} ({lo:.4f}–{hi:.4f}) | "
                     f"{np.mean(tests):.4f} ± {np.std(tests):.4f} |")
        print(lines[-1], flush=True)
    wall = time.perf_counter() - t0
    n_configs = int(np.prod([len(v) for v in SPACE["decisions"].values()]))
    head = [f"# Tuning scikit-learn's MLPClassifier in a declared space ({args.dataset})", "",
            f"`python experiments/sklearn_space.py --dataset {args.dataset} --searches "
            f"{args.searches} --budget {args.budget}`: {len(SPACE['decisions'])} decisions, "
            f"{n_configs} combinations before the forbidden ones; reward = mean 3-fold CV "
            f"accuracy on the training part (75%); {args.searches} searches of "
            f"{args.budget} models per method; {len(scores.cv)} distinct configurations "
            f"fitted in {scores.seconds / 60:.1f} min of {wall / 60:.1f} min.", "",
            "| method | best CV accuracy, mean (95% CI over searches) | test accuracy of "
            "the chosen model, mean ± std |", "|---|---|---|"]
    (out / "summary.md").write_text("\n".join(head + lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for method, c in curves.items():
        x = np.arange(1, c.shape[1] + 1)
        ax.plot(x, c.mean(0), label=method)
    ax.set_xlabel("models fitted")
    ax.set_ylabel("best CV accuracy so far (mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "best_so_far.png", dpi=130)
    plt.close(fig)
    print("\n".join(head + lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
