"""Sequential NumPy versions of the baselines: one trial at a time, one step at a time.

They are what a straightforward, non-vectorized implementation looks like, and serve two
purposes: the tests check that the JAX versions have the same statistics (same
algorithm, different random streams), and ``benchmarks/baselines_throughput.py`` times
them against the vmapped sweeps.
"""

from __future__ import annotations

import numpy as np

from catchjax.benchmarks.tasks import Task


class _HostTask:
    def __init__(self, task: Task):
        a = task.arrays
        self.reward = np.asarray(a.reward)
        self.code_to_row = np.asarray(a.code_to_row)
        self.prefix_mask = np.asarray(a.prefix_mask)
        self.neighbors = np.asarray(a.neighbors)
        self.valid_rows = np.asarray(a.valid_rows)
        self.row_actions = np.asarray(a.row_actions)
        self.space = task.space.name
        self.features: dict[str, np.ndarray] = {}


def random_search(t: _HostTask, rng, budget: int) -> list[int]:
    return list(rng.choice(t.valid_rows, size=budget, replace=False))


def regularized_evolution(t: _HostTask, rng, budget: int, population=10, sample_size=3):
    history = []
    pop = []
    for _ in range(min(population, budget)):
        row = int(rng.choice(t.valid_rows))
        pop.append((row, t.reward[row]))
        history.append(row)
    while len(history) < budget:
        contenders = [pop[rng.integers(len(pop))] for _ in range(sample_size)]
        parent = max(contenders, key=lambda x: x[1])[0]
        nbrs = [int(n) for n in t.neighbors[parent] if n >= 0]
        child = int(rng.choice(nbrs)) if nbrs else parent
        pop.append((child, t.reward[child]))
        pop.pop(0)
        history.append(child)
    return history


def local_search(t: _HostTask, rng, budget: int, n_initial=10, improvement="best"):
    """White et al.'s local search as :mod:`catchjax.methods.baselines.local_search` states it."""
    known: dict[int, float] = {}
    history: list[int] = []

    def evaluate(row):
        known[row] = float(t.reward[row])
        history.append(row)

    def neighbours(row):
        nbrs = [int(n) for n in t.neighbors[row] if n >= 0]
        rng.shuffle(nbrs)
        return nbrs

    for row in rng.choice(t.valid_rows, size=min(n_initial, budget), replace=False):
        evaluate(int(row))
    center = max(history, key=lambda r: known[r])  # first of ties
    nbrs = neighbours(center)
    while len(history) < budget:
        free = [n for n in nbrs if n not in known]
        best = max((n for n in nbrs if n in known), key=lambda n: known[n], default=None)
        if best is not None and known[best] > known[center] and (
                improvement == "first" or not free):
            center, nbrs = best, neighbours(best)
        elif not free:  # a local optimum: restart from a network never evaluated
            center = int(rng.choice(t.valid_rows))
            while center in known:  # rejection: uniform over the networks never evaluated
                center = int(rng.choice(t.valid_rows))
            evaluate(center)
            nbrs = neighbours(center)
        else:
            evaluate(free[0])
            if improvement == "first" and known[free[0]] > known[center]:
                center, nbrs = free[0], neighbours(free[0])
    return history


def _path_encoding(actions: np.ndarray, n_choices: int) -> np.ndarray:
    """BANANAS' path encoding of 4-node cells, written out path by path."""
    from catchjax.methods.baselines.bananas import CELL_PATHS

    ops = n_choices - 1
    out = []
    for length in (1, 2, 3):
        f = np.zeros((len(actions), ops ** length))
        for path in (p for p in CELL_PATHS if len(p) == length):
            for n, a in enumerate(actions):
                if all(a[e] > 0 for e in path):
                    f[n, sum((a[e] - 1) * ops ** (length - 1 - i) for i, e in enumerate(path))] = 1
        out.append(f)
    return np.concatenate(out, axis=1)


class _NumpyMLP:
    """A ReLU MLP trained by full-batch Adam on the mean absolute error."""

    def __init__(self, rng, sizes):
        self.params = [[rng.standard_normal((a, b)) / np.sqrt(a), np.zeros(b)]
                       for a, b in zip(sizes[:-1], sizes[1:])]

    def forward(self, x):
        acts = [x]
        for i, (w, b) in enumerate(self.params):
            x = x @ w + b
            if i < len(self.params) - 1:
                x = np.maximum(x, 0.0)
            acts.append(x)
        return acts

    def fit(self, x, y, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
        m = [[np.zeros_like(p) for p in layer] for layer in self.params]
        v = [[np.zeros_like(p) for p in layer] for layer in self.params]
        for step in range(1, steps + 1):
            acts = self.forward(x)
            g = (np.sign(acts[-1][:, 0] - y) / len(y))[:, None]
            for i in reversed(range(len(self.params))):
                w, _ = self.params[i]
                grads = (acts[i].T @ g, g.sum(0))
                if i:
                    g = (g @ w.T) * (acts[i] > 0)
                for j in (0, 1):
                    m[i][j] = b1 * m[i][j] + (1 - b1) * grads[j]
                    v[i][j] = b2 * v[i][j] + (1 - b2) * grads[j] ** 2
                    self.params[i][j] = self.params[i][j] - lr * (m[i][j] / (1 - b1**step)) / (
                        np.sqrt(v[i][j] / (1 - b2**step)) + eps)
        return self

    def __call__(self, x):
        return self.forward(x)[-1][:, 0]


def bananas(t: _HostTask, rng, budget: int, n_initial=10, batch=5, ensemble=5, layers=3,
            width=20, train_steps=200, learning_rate=0.01, candidates=100, parents=10,
            edits=1, random_candidates=10, acquisition="its", beta=1.0, encoding="auto"):
    """The BANANAS-style search of :mod:`catchjax.methods.baselines.bananas`, one round at
    a time."""
    from catchjax.methods.baselines.bananas import CELL_SPACES

    K = t.prefix_mask.shape[2]
    if encoding == "auto":
        encoding = "path" if t.space in CELL_SPACES else "onehot"
    if encoding not in t.features:  # encoded once per task, not per trial
        t.features[encoding] = (_path_encoding(t.row_actions, K) if encoding == "path" else
                                np.eye(K)[t.row_actions].reshape(len(t.row_actions), -1))
    features = t.features[encoding]

    def mutate(row):
        for _ in range(edits):
            nbrs = [int(n) for n in t.neighbors[row] if n >= 0]
            row = nbrs[rng.integers(len(nbrs))] if nbrs else row
        return row

    history = [int(r) for r in rng.choice(t.valid_rows, size=min(n_initial, budget),
                                           replace=False)]
    while len(history) < budget:
        y = t.reward[history]
        y = (y - y.mean()) / max(y.std(), 1e-6)
        x = features[history]
        models = [_NumpyMLP(rng, [x.shape[1]] + [width] * layers + [1]).fit(
            x, y, train_steps, learning_rate) for _ in range(ensemble)]
        top = sorted(history, key=lambda r: -t.reward[r])[:parents]
        cands = [mutate(top[rng.integers(len(top))]) for _ in range(candidates)]
        cands += [int(r) for r in rng.choice(t.valid_rows, size=random_candidates)]
        preds = np.stack([m(features[cands]) for m in models])
        mean, std = preds.mean(0), preds.std(0)
        if acquisition == "ucb":
            score = mean + beta * std
        else:
            score = mean + std * rng.standard_normal(len(cands))
        n = min(batch, budget - len(history))
        chosen: list[int] = []
        for j in np.argsort(-score, kind="stable"):
            if len(chosen) == n:
                break
            if cands[j] not in history and cands[j] not in chosen:
                chosen.append(cands[j])
        while len(chosen) < n:  # too few new candidates: random networks never evaluated
            unseen = [int(r) for r in t.valid_rows if int(r) not in history + chosen]
            chosen.append(unseen[rng.integers(len(unseen))])
        history += chosen
    return history


def reinforce(t: _HostTask, rng, budget: int, lr=0.01, momentum=0.9):
    L, _, K = t.prefix_mask.shape
    logits = np.zeros((L, K))
    m1, m2 = np.zeros_like(logits), np.zeros_like(logits)  # Adam moments
    b1, b2, eps = 0.9, 0.999, 1e-8
    num = den = 0.0
    history = []
    for step in range(1, budget + 1):
        prefix, actions, grad = 0, [], np.zeros_like(logits)
        for i in range(L):
            z = np.where(t.prefix_mask[i, prefix], logits[i], -1e9)
            p = np.exp(z - z.max())
            p /= p.sum()
            a = int(rng.choice(K, p=p))
            actions.append(a)
            grad[i] = p
            grad[i, a] -= 1.0  # d(-log p_a)/d logits
            prefix = prefix * K + a
        code = int(np.dot(actions, K ** np.arange(L - 1, -1, -1)))
        row = int(t.code_to_row[code])
        reward = float(t.reward[row])
        num, den = momentum * num + (1 - momentum) * reward, momentum * den + (1 - momentum)
        g = grad * (reward - num / den)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        logits -= lr * (m1 / (1 - b1**step)) / (np.sqrt(m2 / (1 - b2**step)) + eps)
        history.append(row)
    return history


ALGORITHMS = {"random": random_search, "rea": regularized_evolution, "reinforce": reinforce,
              "ls": local_search, "bananas": bananas}


def run(method: str, task: Task, trials: int, budget: int, seed: int = 0,
        **settings) -> np.ndarray:
    """Run ``trials`` trials one after another (``settings``: the method's, as keywords);
    returns each trial's chosen row ``[trials]``."""
    host = _HostTask(task)
    algorithm = ALGORITHMS[method]
    chosen = []
    for i in range(trials):
        rng = np.random.default_rng([seed, i])
        rows = algorithm(host, rng, budget, **settings)
        rewards = host.reward[rows]
        chosen.append(rows[int(np.argmax(rewards))])  # first of equal rewards, as the sweep
    return np.asarray(chosen)
