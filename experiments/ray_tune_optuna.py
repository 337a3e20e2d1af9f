"""A catchjax method searching inside Ray Tune, through optuna (issue 34, item 3).

Ray Tune takes any optuna sampler (``OptunaSearch(sampler=...)``), so a
:class:`catchjax.integrations.optuna.CatchjaxSampler` proposes every trial Ray runs. The
task is small and real: a scikit-learn MLP on the digits data (1,797 8x8 images, a fixed
split), its architecture and regularization a declared space of four decisions, scored by
validation accuracy; Ray runs ``--concurrent`` trainings at once. Prints the best
configuration and its test accuracy, and writes ``trials.csv``.

    pip install -e '.[ray]'
    python experiments/ray_tune_optuna.py --method rea --samples 40 --out runs/ray_tune
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

SPACE = {"layers": [1, 2, 3], "width": [16, 32, 64, 128], "activation": ["relu", "tanh"],
         "alpha": [1e-4, 1e-3, 1e-2]}


def data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    return (x[:1000], y[:1000]), (x[1000:1397], y[1000:1397]), (x[1397:], y[1397:])


def fit(config: dict, seed: int = 0):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    (xt, yt), _, _ = data()
    net = MLPClassifier((config["width"],) * config["layers"], activation=config["activation"],
                        alpha=config["alpha"], max_iter=60, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return net.fit(xt, yt)


def train(config: dict) -> None:
    """One Ray Tune trial: train the proposed network, report its validation accuracy."""
    from ray import tune

    _, (xv, yv), _ = data()
    tune.report({"accuracy": float(fit(config).score(xv, yv))})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="rea")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--concurrent", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. population=8 (integers only)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from catchjax.integrations.optuna import CatchjaxSampler

    settings = {k: int(v) for k, v in (s.split("=", 1) for s in args.set)}
    sampler = CatchjaxSampler(args.method, SPACE, budget=args.samples, seed=args.seed,
                              **settings)
    search = OptunaSearch(space=sampler.distributions, metric="accuracy", mode="max",
                          sampler=sampler)
    out = Path(args.out).absolute()
    ray.init(num_cpus=args.concurrent, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            train, tune_config=tune.TuneConfig(search_alg=search, num_samples=args.samples,
                                               max_concurrent_trials=args.concurrent),
            run_config=tune.RunConfig(storage_path=str(out / "ray"), name="search",
                                      verbose=0))
        results = tuner.fit()
    finally:
        ray.shutdown()
    rows = [{**r.config, "accuracy": r.metrics.get("accuracy")} for r in results]
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*SPACE, "accuracy"])
        w.writeheader()
        w.writerows(rows)
    best = results.get_best_result(metric="accuracy", mode="max")
    _, _, (xs, ys) = data()
    test = fit(best.config).score(xs, ys)
    print(f"{args.method} in Ray Tune: {len(rows)} trials, best validation accuracy "
          f"{best.metrics['accuracy']:.4f} with {best.config}, its test accuracy {test:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
