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


ALGORITHMS = {"random": random_search, "rea": regularized_evolution, "reinforce": reinforce}


def run(method: str, task: Task, trials: int, budget: int, seed: int = 0) -> np.ndarray:
    """Run ``trials`` trials one after another; returns each trial's chosen row ``[trials]``."""
    host = _HostTask(task)
    algorithm = ALGORITHMS[method]
    chosen = []
    for i in range(trials):
        rng = np.random.default_rng([seed, i])
        rows = algorithm(host, rng, budget)
        rewards = host.reward[rows]
        chosen.append(rows[int(np.argmax(rewards))])  # first of equal rewards, as the sweep
    return np.asarray(chosen)
