"""A synthetic task family in which the context must matter (issue 32): tasks whose good
networks differ in a way a search's history reveals, so that a searcher that knows the
task clearly beats one that does not.

On the NB201 cell (6 edges x 5 operations, all 15,625 cells), task type ``t`` scores a
cell additively, ``x(a) = sum_l theta_t[l, a_l]``, with ``theta_t`` drawn from N(0, 1)
per (edge, operation). Types come in **opposite pairs** (``theta_{2k+1} = -theta_{2k}``):
the best cells of one are the worst of the other, and averaged over the family every
(edge, operation) is worth nothing, so a searcher that does not know the task (z = 0)
has nothing to carry over but how to search. Each type has ``INSTANCES`` tasks, its
theta plus a small N(0, INSTANCE_SPREAD) change and per-cell noise, as class subsets of
one dataset differ a little: leaving one task out of the meta-training pool keeps its
siblings in it, so the target's type is known to meta-training but the target is not.

Scores are standardized per task (mean 0, std 1 over the cells); the validation score is
the reward, the test score (validation plus noise of std TEST_NOISE) is reported.
Made-up numbers: this family tests the mechanism, not any real network.
"""

from __future__ import annotations

import numpy as np

PAIRS = 3  # opposite pairs of task types: 2 * PAIRS types
INSTANCES = ("a", "b", "c")  # tasks per type
INSTANCE_SPREAD = 0.25  # std of an instance's change of its type's theta
CELL_NOISE = 0.2  # std of per-cell noise (before standardizing)
TEST_NOISE = 0.05  # std of the test score's noise around the validation score
SEED = 20261206


def task_names() -> list[str]:
    """``type0_a``, ``type0_b``, ..., ``type5_c``: type ``2k + 1`` is type ``2k`` reversed."""
    return [f"type{t}_{i}" for t in range(2 * PAIRS) for i in INSTANCES]


def type_of(task: str) -> int:
    return int(task.removeprefix("type").split("_")[0])


def columns(actions: np.ndarray, n_choices: int) -> dict[str, np.ndarray]:
    """``{task}__valid_score`` and ``{task}__test_score`` of every task, for the cells
    ``actions`` [n, L]."""
    rng = np.random.default_rng(SEED)
    n, L = actions.shape
    onehot = np.eye(n_choices)[actions].reshape(n, L * n_choices)
    thetas = []
    for _ in range(PAIRS):
        theta = rng.normal(0.0, 1.0, L * n_choices)
        thetas += [theta, -theta]
    cols = {}
    for t, theta in enumerate(thetas):
        for inst in INSTANCES:
            own = theta + rng.normal(0.0, INSTANCE_SPREAD, theta.shape)
            x = onehot @ own + rng.normal(0.0, CELL_NOISE, n)
            x = (x - x.mean()) / x.std()
            cols[f"type{t}_{inst}__valid_score"] = x
            cols[f"type{t}_{inst}__test_score"] = x + rng.normal(0.0, TEST_NOISE, n)
    return cols
