"""CATCH's settings (:class:`CatchConfig`) and what refuses the ones that cannot run.

One frozen dataclass for the search from scratch, the meta-trained variants and
meta-training; :mod:`catchjax.methods.catch` runs it, :mod:`catchjax.methods` registers
its methods with their defaults.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from catchjax.errors import CatchjaxError

CONTEXTS = ("learned", "zero", "random", "oracle")
ORACLE_SEED = 32  # the fixed projection of the oracle context (oracle_context)


# read only by meta-training and adaptation (catch-meta and its ablations), not by a
# search from scratch
META_SETTINGS = ("meta_epochs", "meta_budget", "meta_batch", "reset_optimizer", "meta_tasks",
                 "task_noise")
# how meta-training forms the task of a meta-epoch from the pool (see meta_task_rewards)
META_TASKS = ("pool", "mixtures")


@dataclasses.dataclass(frozen=True)
class CatchConfig:
    budget: int = 50  # networks evaluated (search epochs + initial random ones)
    n_initial: int = 5  # random networks that seed the history (paper Fig. 2)
    candidates: int = 100  # M: candidates sampled and scored each search epoch
    z_dim: int = 10  # size of the task context z (the encoder's output)
    hidden: int = 64  # width of the encoder's, controller's and evaluator's MLPs
    beta_kl: float = 0.1  # weight of the context's KL term (Eq. 2)
    learning_rate: float = 1e-3  # Adam, all three networks
    updates_per_epoch: int = 4  # gradient steps after each evaluated network
    ppo_clip: float = 0.2  # PPO's clipping range of the probability ratio
    per_alpha: float = 0.6  # prioritized replay: priority exponent
    per_beta0: float = 0.4  # annealed to 1 at the last search epoch
    per_fraction: float = 0.8  # PER batch = 80% of the memory
    epsilon_start: float = 0.5  # epsilon-greedy over the candidates, reset per task
    epsilon_end: float = 0.05  # epsilon at the last search epoch
    context: str = "learned"  # "learned" | "zero" | "random" | "oracle"
    meta_trained: bool = False  # True for catch-meta: the search starts from a meta-trained agent
    meta_epochs: int = 25  # N_meta: meta-training searches, one pool task each
    meta_budget: int = 20  # N_search: networks per meta-training search
    # PPO's entropy bonus (L_c - c * H(pi)), in meta-training and adaptation: 0 here (the
    # paper's Eq. 2, and catch-sfs), 0.5 for the meta-trained methods (methods.py,
    # META_DEFAULTS); and (issue 8) a fresh Adam state when a search starts from an agent.
    entropy_coef: float = 0.0  # PPO entropy bonus c: L_c - c * H(pi) (catch-meta: 0.5)
    # Issue 32: an entropy schedule over each search: c goes linearly from entropy_coef at
    # the first search epoch to entropy_coef_end at the last (as epsilon does), so the
    # controller explores first and concentrates later. None: c stays entropy_coef.
    entropy_coef_end: float | None = None  # c at the last search epoch (None: constant)
    # Issue 32: a sampling temperature over each search: the M candidates are drawn from
    # the controller's decisions raised to 1/T, T going linearly from 1 at the first search
    # epoch to temperature_end at the last, so the proposals concentrate on what the
    # controller prefers as the search goes on. PPO still trains the untempered policy
    # (its stored log-probs are log pi), as it already learns from the evaluator's picks
    # rather than from samples of pi. None: candidates are samples of pi itself.
    temperature_end: float | None = None  # candidates' temperature at the last epoch (None: 1)
    # Issue 32: the evaluator's pick skips networks this search has already asked (their
    # rewards are known; asking again spends a query on nothing), as random search, local
    # search and BANANAS do; when all M candidates are known, a uniform unasked network.
    # False: Algorithm 1 as written, which re-proposed known networks in 44% of CATCH-meta's
    # queries on NB201 (experiments/results/catch_adaptation_20agents).
    skip_evaluated: bool = True  # never ask a network twice (False: Algorithm 1 as written)
    reset_optimizer: bool = False  # a fresh Adam state when adapting a trained agent
    # Meta-training tasks per gradient step (issue 8): 1 = the paper's Algorithm 1, one
    # pool task per meta-epoch; B > 1 = PEARL's meta-batch, B searches on B pool tasks in
    # lockstep sharing one agent, each step on the mean of their losses (Eq. 2).
    meta_batch: int = 1  # pool tasks per meta-training step (1: Algorithm 1)
    # The task of each meta-epoch (issue 19): "pool" = one of the pool's columns, drawn
    # uniformly; "mixtures" = a new task every meta-epoch formed from the pool's columns
    # (a random mixture, rank noise and a monotone transform, meta_task_rewards), as the
    # paper draws a new ImageNet16 class subset every meta-epoch (§4.2).
    meta_tasks: str = "pool"  # "pool": a pool column per meta-epoch; "mixtures": a new task
    task_noise: float = 0.5  # mixtures: the noise's std is uniform in [0, task_noise]

    # Settings added after agents and searches were first saved, with the value that
    # reproduces what a file without them ran (methods.with_added_settings fills them in), so
    # that a search saved before a default changed continues as it began.
    ADDED_SETTINGS: ClassVar[dict] = {"skip_evaluated": False, "temperature_end": None}

    def validate(self, task) -> None:
        """Refuse settings that cannot run (or would run to a meaningless result)."""
        if self.candidates < 1 or self.z_dim < 1 or self.hidden < 1:
            raise CatchjaxError(
                f"CATCH needs candidates (M) >= 1, z_dim >= 1 and hidden >= 1, got "
                f"{self.candidates}, {self.z_dim}, {self.hidden}"
            )
        if self.candidates > MAX_CANDIDATES:
            raise CatchjaxError(
                f"candidates (M) is at most {MAX_CANDIDATES:,} (every epoch samples and scores "
                f"all of them; the paper uses 100), got {self.candidates:,}"
            )
        if self.context not in CONTEXTS:
            raise CatchjaxError(f"context must be one of {sorted(CONTEXTS)}, got {self.context!r}")
        if self.context == "oracle" and getattr(task, "table", None) is None:
            raise CatchjaxError(
                "the oracle context is computed from the task's whole reward table: it runs "
                "on a benchmark table (catchjax sweep), not on rewards told from outside "
                "(ask/tell, optuna); use catch-meta there")
        limit = min(self.budget, self.meta_budget) if self.meta_trained else self.budget
        if not 1 <= self.n_initial <= limit:
            raise CatchjaxError(
                "n_initial must be in 1..budget"
                + (" (and <= meta_budget)" if self.meta_trained else "")
                + f", got {self.n_initial}"
            )
        n_searchable = getattr(task, "n_searchable", None)
        for name, size in (("budget", self.budget),
                           ("meta_budget", self.meta_budget if self.meta_trained else 0)):
            if self.skip_evaluated and n_searchable is not None and size > n_searchable:
                raise CatchjaxError(
                    f"CATCH with skip_evaluated never asks a network twice, so its {name} "
                    f"of {size} cannot exceed the {n_searchable} searchable networks of "
                    f"{getattr(task, 'name', 'the task')}; lower it or set "
                    f"skip_evaluated=false")
        if self.meta_epochs < 1 or self.meta_budget < 1:
            raise CatchjaxError(
                f"meta_epochs and meta_budget must be >= 1, got {self.meta_epochs}, "
                f"{self.meta_budget}"
            )
        if self.meta_tasks not in META_TASKS:
            raise CatchjaxError(f"meta_tasks must be one of {', '.join(META_TASKS)}, got "
                                f"{self.meta_tasks!r}")
        if self.meta_batch < 1:
            raise CatchjaxError(f"meta_batch must be >= 1, got {self.meta_batch}")
        if self.updates_per_epoch < 1:
            raise CatchjaxError(f"updates_per_epoch must be >= 1, got {self.updates_per_epoch}")
        checks = {
            "learning_rate": (self.learning_rate, 0.0, math.inf, "a finite number > 0", False),
            "per_fraction": (self.per_fraction, 0.0, 1.0, "in (0, 1]", False),
            "per_alpha": (self.per_alpha, 0.0, math.inf, "finite and >= 0", True),
            "per_beta0": (self.per_beta0, 0.0, 1.0, "in [0, 1]", True),
            "epsilon_start": (self.epsilon_start, 0.0, 1.0, "in [0, 1]", True),
            "epsilon_end": (self.epsilon_end, 0.0, 1.0, "in [0, 1]", True),
            "ppo_clip": (self.ppo_clip, 0.0, math.inf, "finite and >= 0", True),
            "beta_kl": (self.beta_kl, 0.0, math.inf, "finite and >= 0", True),
            "entropy_coef": (self.entropy_coef, 0.0, math.inf, "finite and >= 0", True),
            "task_noise": (self.task_noise, 0.0, math.inf, "finite and >= 0", True),
        }
        if self.entropy_coef_end is not None:
            checks["entropy_coef_end"] = (self.entropy_coef_end, 0.0, math.inf,
                                          "finite and >= 0 (or None: no schedule)", True)
        if self.temperature_end is not None:
            checks["temperature_end"] = (self.temperature_end, 0.0, math.inf,
                                         "a finite number > 0 (or None: no schedule)", False)
        for name, (value, lo, hi, words, closed_low) in checks.items():
            low_ok = value >= lo if closed_low else value > lo
            if not (low_ok and value <= hi and math.isfinite(value)):
                raise CatchjaxError(f"CATCH setting {name} must be {words}, got {value}")


MAX_CANDIDATES = 65_536
