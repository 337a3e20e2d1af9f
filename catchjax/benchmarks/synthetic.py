"""Deterministic synthetic tables with the shapes and column names of the real ones.

They let the demo, the tests and the speed scripts run without any downloaded data. The
numbers are made up, not a model of any real network:

* a shared latent quality per architecture: per-(decision, choice) effects plus
  pairwise interactions between decisions, drawn from a fixed seed;
* each task (dataset) mixes the shared latent with its own (weight 0.8 / 0.6), so tasks
  are correlated but rank architectures differently;
* metrics map a task's latent through a sigmoid into a range like the real one; the
  12-epoch (cheap) accuracy is a noisy, lower copy of the 200-epoch one; test = valid
  plus small noise;
* NB201 cells whose output is not connected to their input (every path has a ``none``)
  get chance accuracy, so there are many exact ties, as in the real table.
"""

from __future__ import annotations

import functools

import numpy as np

from catchjax.benchmarks import catalog, context_family, spaces
from catchjax.benchmarks.table import Table, make_table

SEED = 20260101
_DATASETS = {  # name prefix: (chance %, worst trained %, best %)
    "cifar10": (10.0, 70.0, 94.0),
    "cifar100": (1.0, 40.0, 73.0),
    "imagenet16": (0.83, 15.0, 47.0),
}
_TRANSNAS_RANGES = {
    "top1": (30.0, 55.0),
    "neg_loss": (-0.9, -0.56),
    "mIoU": (5.0, 30.0),
    "ssim": (0.40, 0.70),
}


def _latents(space: spaces.SearchSpace, actions: np.ndarray, n_tasks: int, rng) -> np.ndarray:
    """Standardized latent quality ``[n_tasks, n]``, correlated across tasks."""
    L, K = space.n_decisions, space.n_choices
    onehot = np.eye(K)[actions].reshape(len(actions), L * K)

    def draw():
        main = rng.normal(0.0, 1.0, L * K)
        pair = rng.normal(0.0, 0.35, (L * K, L * K))
        z = onehot @ main + np.einsum("ni,ij,nj->n", onehot, np.triu(pair, 1), onehot)
        return (z - z.mean()) / z.std()

    shared = draw()
    out = [0.8 * shared + 0.6 * draw() for _ in range(n_tasks)]
    return np.stack([(z - z.mean()) / z.std() for z in out])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _nb201_connected(actions: np.ndarray) -> np.ndarray:
    """Whether node 3 is reachable from node 0 through edges whose op is not ``none``."""
    on = actions != 0  # edges: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3
    n1 = on[:, 0]
    n2 = on[:, 1] | (n1 & on[:, 2])
    return on[:, 3] | (n1 & on[:, 4]) | (n2 & on[:, 5])


def _nb201_columns(actions, rng) -> dict[str, np.ndarray]:
    z = _latents(spaces.NB201, actions, len(_DATASETS), rng)
    connected = _nb201_connected(actions)
    n = len(actions)
    cols = {}
    for (name, (chance, lo, hi)), zi in zip(_DATASETS.items(), z):
        def acc(latent, shift=0.0, scale=1.0, lo=lo, hi=hi, chance=chance):
            a = shift + lo + (hi - lo) * scale * _sigmoid(1.2 * latent)
            return np.where(connected, a, chance)

        valid200 = acc(zi)
        test200 = np.where(connected, valid200 + rng.normal(0, 0.3, n), chance)
        cheap = zi * 0.9 + rng.normal(0, 0.45, n)  # rank correlation ~0.9 with 200 epochs
        valid12 = acc(cheap, shift=-0.1 * (hi - lo), scale=0.95)
        test12 = np.where(connected, valid12 + rng.normal(0, 0.3, n), chance)
        train200 = np.where(connected, np.minimum(valid200 + 8 + rng.normal(0, 1, n), 100), chance)
        if name == "cifar10":
            cols["cifar10_valid_train_acc_200"] = train200
            cols["cifar10_valid_valid_acc_200"] = valid200
            cols["cifar10_valid_test_acc_200"] = test200
            cols["cifar10_test_acc_200"] = np.where(connected, test200 + 2.5, chance)
            cols["cifar10_valid_valid_acc_12"] = valid12
            cols["cifar10_test_acc_12"] = np.where(connected, test12 + 2.0, chance)
        else:
            cols[f"{name}_train_acc_200"] = train200
            cols[f"{name}_valid_acc_200"] = valid200
            cols[f"{name}_test_acc_200"] = test200
            cols[f"{name}_valid_acc_12"] = valid12
            cols[f"{name}_test_acc_12"] = test12
    convs = np.isin(actions, (2, 3)).sum(1) + 0.9 * (actions == 3).sum(1)
    cols["params_cifar10_M"] = 0.07 + 0.16 * convs
    for name in _DATASETS:
        cols[f"{name}_edgegpu_latency"] = 2.0 + 0.9 * convs + rng.gamma(4.0, 0.05, n)
    return cols


def _transnas_columns(space, actions, rng, task_metrics) -> dict[str, np.ndarray]:
    tasks = list(task_metrics)
    z = _latents(space, actions, len(tasks), rng)
    n = len(actions)
    cols = {}
    for task, zi in zip(tasks, z):
        metric = task_metrics[task]
        lo, hi = _TRANSNAS_RANGES[metric]
        valid = lo + (hi - lo) * _sigmoid(1.2 * zi)
        noise = 0.01 * (hi - lo)
        cols[f"{task}__valid_{metric}"] = valid
        cols[f"{task}__test_{metric}"] = valid + rng.normal(0, noise, n)
        cols[f"{task}__train_{metric}"] = valid + 0.1 * (hi - lo) + rng.normal(0, noise, n)
        cols[f"{task}__time_elapsed"] = 3000 + 1000 * _sigmoid(zi) + rng.gamma(2.0, 100.0, n)
    return cols


def generate(space: spaces.SearchSpace, stream: int, task_metrics) -> tuple:
    """(actions, columns) of the synthetic table drawn from random stream ``stream``;
    ``task_metrics``: TransNAS task -> metric name (the columns to make for that space)."""
    rng = np.random.default_rng([SEED, stream])
    actions = space.enumerate()
    if space is spaces.NB201:
        return actions, _nb201_columns(actions, rng)
    return actions, _transnas_columns(space, actions, rng, task_metrics)


@functools.cache
def synthetic_table(benchmark: str) -> Table:
    """The synthetic table of ``benchmark`` (e.g. ``synthetic-nb201``); same every call."""
    info = catalog.benchmark_info(benchmark)
    if benchmark == "synthetic-context":  # the designed family of issue 32
        actions = info.space.enumerate()
        return make_table(benchmark, info.space, actions,
                          context_family.columns(actions, info.space.n_choices),
                          source=f"synthetic context family (seed {context_family.SEED})")
    stream = list(catalog.BENCHMARKS).index(benchmark)
    actions, cols = generate(info.space, stream, catalog.TRANSNAS_METRIC)
    return make_table(benchmark, info.space, actions, cols, source=f"synthetic (seed {SEED})")
