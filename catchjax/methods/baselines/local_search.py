"""Local search with random restarts (White et al., "Exploring the loss landscape in neural
architecture search", UAI 2021; first circulated as "Local search is state of the art for
NAS benchmarks", 2020), over the one-edit neighbourhood the table gives every network.

Start from the best of ``n_initial`` distinct random networks. Then, one query at a time:

* evaluate the centre's neighbours (networks that differ in one decision) in a random
  order, never one that was evaluated before — its reward is already known and counts;
* ``improvement="best"`` (White et al.'s Algorithm 1): once every neighbour is known, move
  to the best one if it beats the centre; ``"first"``: move as soon as any known
  neighbour beats the centre;
* at a local optimum (no neighbour beats the centre, all known), restart from a random
  network that was never evaluated.

No network is evaluated twice, so the budget may not exceed the searchable networks, and
only searchable rows are proposed (the table's neighbours are searchable rows only).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, unevaluated_row
from catchjax.errors import CatchjaxError
from catchjax.methods.baselines.random_search import distinct_indices
from catchjax.stepping import run_on_table, take_planned

IMPROVEMENT = ("best", "first")


@dataclasses.dataclass(frozen=True)
class LocalSearchConfig:
    budget: int = 50
    # distinct random networks evaluated first; the search starts from their best (10: the
    # same random start as regularized evolution's population, so both spend the same
    # queries before their first informed move)
    n_initial: int = 10
    improvement: str = "best"  # "best" (whole neighbourhood, then move) or "first"

    def validate(self, task) -> None:
        if isinstance(self.n_initial, bool) or self.n_initial < 1:
            raise CatchjaxError(f"local search needs n_initial >= 1, got {self.n_initial!r}")
        if self.improvement not in IMPROVEMENT:
            raise CatchjaxError(f"local search's improvement is 'best' or 'first', got "
                                f"{self.improvement!r}")
        if self.budget > task.n_searchable:
            raise CatchjaxError(
                f"local search never evaluates a network twice, so it cannot make "
                f"{self.budget} queries on {task.name}, which has only {task.n_searchable} "
                f"searchable networks; lower the budget")


@struct.dataclass
class LocalSearchState:
    ledger: Ledger
    init_rows: jnp.ndarray  # i32 [n_initial], distinct random networks, drawn up front
    key: jnp.ndarray
    asked: jnp.ndarray  # bool [n_archs], proposed (evaluated or being evaluated)
    known: jnp.ndarray  # f32 [n_archs], told rewards, -inf until told
    center: jnp.ndarray  # i32, the network whose neighbourhood is searched
    center_reward: jnp.ndarray  # f32
    order: jnp.ndarray  # i32 [L*(K-1)], the random order of the centre's neighbour slots
    moves: jnp.ndarray  # i32, centres so far (keys the neighbourhood orders)
    restarting: jnp.ndarray  # bool, the last proposal was a restart: its reward makes it
    # the new centre


def n_initial(config: LocalSearchConfig) -> int:
    return min(config.n_initial, config.budget)


def start(config: LocalSearchConfig, key, task: TaskArrays, agent=None) -> LocalSearchState:
    k_init, key = jax.random.split(key)
    n_valid = task.valid_rows.shape[0]
    init_rows = task.valid_rows[distinct_indices(k_init, n_valid, n_initial(config))]
    n_archs, slots = task.neighbors.shape
    return LocalSearchState(
        ledger=Ledger.empty(config.budget), init_rows=init_rows, key=key,
        asked=jnp.zeros((n_archs,), bool), known=jnp.full((n_archs,), -jnp.inf),
        center=init_rows[0], center_reward=jnp.asarray(-jnp.inf),
        order=jnp.arange(slots, dtype=jnp.int32), moves=jnp.zeros((), jnp.int32),
        restarting=jnp.asarray(False))


def random_order(key, n: int) -> jnp.ndarray:
    """A uniformly random order of ``range(n)``: the slots sorted by random 32-bit keys
    (ties by slot) -- for n < 1,600 the very bits of ``jax.random.permutation``, which
    sorts such keys once -- but ranked by comparing every pair instead of sorting. For
    the neighbourhood's few slots (24 in NB201) the ``[n, n]`` comparison is one fused
    pass, where XLA's CPU sort, vmapped over trials and run at every step of a sweep,
    took three quarters of its time (``benchmarks/baselines_throughput.py``)."""
    bits = jax.random.bits(jax.random.split(key)[1], (n,), jnp.uint32)
    slot = jnp.arange(n)
    before = (bits[None, :] < bits[:, None]) | ((bits[None, :] == bits[:, None])
                                                & (slot[None, :] < slot[:, None]))
    rank = jnp.sum(before, axis=1)  # where slot i goes
    return jnp.sum(jnp.where(rank[None, :] == slot[:, None], slot[None, :], 0),
                   axis=1).astype(jnp.int32)


def _move(state: LocalSearchState, row, reward) -> LocalSearchState:
    """Make ``row`` the centre; its neighbours get a fresh random order."""
    k = jax.random.fold_in(jax.random.fold_in(state.key, 0), state.moves)
    return state.replace(center=row, center_reward=reward, moves=state.moves + 1,
                         order=random_order(k, state.order.shape[0]))


def _look(state: LocalSearchState, task: TaskArrays):
    """The centre's neighbours in its random order: ``(rows, free, best_row, best_reward)``,
    free = real networks not asked yet, best = the best neighbour whose reward is known."""
    rows = task.neighbors[state.center][state.order]
    real, safe = rows >= 0, jnp.maximum(rows, 0)
    rewards = jnp.where(real, state.known[safe], -jnp.inf)
    j = jnp.argmax(rewards)
    return rows, real & ~state.asked[safe], rows[j], rewards[j]


def _light(state: LocalSearchState) -> LocalSearchState:
    """The state without its ``[n_archs]`` arrays. A loop or branch that changes only the
    centre carries this: vmapped, a ``while_loop`` or ``cond`` selects every carried
    array per trial at every iteration, and the two ``[n_archs]`` arrays made that most of
    a sweep's time (``benchmarks/baselines_throughput.py``)."""
    return state.replace(asked=None, known=None)


def _heavy(light: LocalSearchState, state: LocalSearchState) -> LocalSearchState:
    return light.replace(asked=state.asked, known=state.known)


def _climb(config: LocalSearchConfig, state: LocalSearchState, task: TaskArrays):
    """Move while the rule says a known neighbour should become the centre; returns the
    state and its final look (:func:`_look`)."""

    def should_move(carry):
        light, (_, free, _, reward) = carry
        better = reward > light.center_reward
        return better if config.improvement == "first" else better & ~free.any()

    def move(carry):
        light, (_, _, row, reward) = carry
        light = _move(light, row, reward)
        return light, _look(_heavy(light, state), task)

    # each move raises the centre's reward, so the loop ends
    light, seen = jax.lax.while_loop(should_move, move,
                                     (_light(state), _look(state, task)))
    return _heavy(light, state), seen


def _propose(config, state: LocalSearchState, task: TaskArrays):
    """One proposal: the centre's first unevaluated neighbour, or a restart."""
    state, (rows, free, _, _) = _climb(config, state, task)
    k = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.ledger.n_asked)
    restart_row = unevaluated_row(k, task.valid_rows, state.asked)  # the budget leaves one
    restart = ~free.any()
    row = jnp.where(restart, restart_row, rows[jnp.argmax(free)])
    state = state.replace(asked=state.asked.at[row].set(True), restarting=restart,
                          ledger=state.ledger.asked(row[None]))
    return row, state, restart


def ask(config, state: LocalSearchState, task, k: int, seeding: bool):
    if seeding:
        rows, state = take_planned(state, state.init_rows, k)
        return rows, state.replace(asked=state.asked.at[rows].set(True)), {}

    def one(state, _):
        row, state, restart = _propose(config, state, task)
        return state, (row, restart)

    state, (rows, restarts) = jax.lax.scan(one, state, None, length=k)
    return rows, state, {"restart": restarts.astype(jnp.float32)}


def tell(config, state: LocalSearchState, task, ids, rewards, seeding: bool):
    rows = state.ledger.rows[ids]
    state = state.replace(known=state.known.at[rows].set(rewards),
                          ledger=state.ledger.told(ids, rewards))
    if seeding:  # the centre: the best initial network told so far (first of ties)
        j = jnp.argmax(state.known[state.init_rows])
        row = state.init_rows[j]
        return _move(state.replace(moves=jnp.zeros((), jnp.int32)), row, state.known[row]), {}

    def one(state, item):
        row, reward = item
        moves = state.restarting | ((config.improvement == "first")
                                    & (reward > state.center_reward))
        light = jax.lax.cond(moves, lambda s: _move(s, row, reward), lambda s: s,
                             _light(state))
        return _heavy(light, state).replace(restarting=jnp.asarray(False)), None

    state, _ = jax.lax.scan(one, state, (rows, rewards))
    return state, {}


def ready(config: LocalSearchConfig, state: LocalSearchState) -> int:
    """The initial networks together; then one at a time, each after the last is told
    (the next proposal depends on every reward so far)."""
    asked, told, n0 = int(state.ledger.n_asked), int(state.ledger.n_told), n_initial(config)
    if asked < n0:
        return n0 - asked
    return int(told == asked and asked < config.budget)


STEPPER = Stepper(start=start, ask=ask, tell=tell, first=n_initial, ready=ready)


def local_search(config: LocalSearchConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task)[0]
