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

The state holds no array the size of the table: whether a network was asked, and its
reward, are looked up in the ledger (at most ``budget`` rows), so a trial's state is the
same on a table of 3,256 networks or of 15,625 and a sweep of many trials is not
memory-bound (``docs/performance.md``).
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
    center: jnp.ndarray  # i32, the network whose neighbourhood is searched
    center_reward: jnp.ndarray  # f32
    order: jnp.ndarray  # u32 [L*(K-1)], random keys of the centre's neighbour slots: they
    # are visited in the order of these keys, ties by slot (see first_in_order)
    moves: jnp.ndarray  # i32, centres so far (keys the neighbourhood orders)
    restarting: jnp.ndarray  # bool, the last proposal was a restart: its reward makes it
    # the new centre


def n_initial(config: LocalSearchConfig) -> int:
    return min(config.n_initial, config.budget)


def start(config: LocalSearchConfig, key, task: TaskArrays, agent=None) -> LocalSearchState:
    k_init, key = jax.random.split(key)
    n_valid = task.valid_rows.shape[0]
    init_rows = task.valid_rows[distinct_indices(k_init, n_valid, n_initial(config))]
    slots = task.neighbors.shape[1]
    return LocalSearchState(
        ledger=Ledger.empty(config.budget), init_rows=init_rows, key=key,
        center=init_rows[0], center_reward=jnp.asarray(-jnp.inf),
        order=jnp.zeros((slots,), jnp.uint32), moves=jnp.zeros((), jnp.int32),
        restarting=jnp.asarray(False))


def order_keys(key, n: int) -> jnp.ndarray:
    """Random 32-bit keys of ``n`` slots. Visiting the slots in the order of their keys
    (ties by slot) is a uniformly random order and, for n < 1,600, the very order of
    ``jax.random.permutation(key, n)``, which sorts these keys. The search never sorts
    them: it only needs the first slot of that order among some (:func:`first_in_order`),
    where XLA's CPU sort, vmapped and run at every step, was three quarters of a sweep."""
    return jax.random.bits(jax.random.split(key)[1], (n,), jnp.uint32)


def first_in_order(mask, keys) -> jnp.ndarray:
    """The slot that comes first in the order of ``keys`` (ties by slot) among those where
    ``mask`` is set (0 if none is): what visiting the sorted slots would find first."""
    # one arg-reduction: the first least key among the masked slots, unless the least is
    # the filler itself (no slot masked, or every masked key is 0xFFFFFFFF), when the
    # first masked slot is the answer (0 if none)
    j = jnp.argmin(jnp.where(mask, keys, jnp.uint32(0xFFFFFFFF)))
    return jnp.where(mask[j], j, jnp.argmax(mask))


def _lookup(ledger: Ledger, rows):
    """``(asked, known)`` of each of ``rows`` (>= 0): whether it was proposed (evaluated
    or being evaluated), and its told reward, -inf until told. A row is asked at most
    once, so the position of its one match in the ledger is found by a sum."""
    slots = jnp.arange(1, ledger.rows.shape[0] + 1, dtype=jnp.int32)
    where = jnp.sum(jnp.where(rows[..., None] == ledger.rows, slots, 0), axis=-1)
    reward = ledger.rewards[jnp.maximum(where - 1, 0)]
    asked = where > 0
    return asked, jnp.where(asked & ~jnp.isnan(reward), reward, -jnp.inf)


def _move(state: LocalSearchState, row, reward) -> LocalSearchState:
    """Make ``row`` the centre; its neighbours get a fresh random order."""
    k = jax.random.fold_in(jax.random.fold_in(state.key, 0), state.moves)
    return state.replace(center=row, center_reward=reward, moves=state.moves + 1,
                         order=order_keys(k, state.order.shape[0]))


def _look(state: LocalSearchState, task: TaskArrays):
    """The centre's neighbours: ``(rows, free, best_row, best_reward)`` by slot, free = real
    networks not asked yet, best = the best neighbour whose reward is known (of equal
    rewards, the first in the centre's random order)."""
    rows = task.neighbors[state.center]
    real, safe = rows >= 0, jnp.maximum(rows, 0)
    asked, known = _lookup(state.ledger, safe)
    rewards = jnp.where(real, known, -jnp.inf)
    j = first_in_order(rewards == jnp.max(rewards), state.order)
    return rows, real & ~asked, rows[j], rewards[j]


def _climb(config: LocalSearchConfig, state: LocalSearchState, task: TaskArrays):
    """Move while the rule says a known neighbour should become the centre; returns the
    state and its final look (:func:`_look`)."""

    def should_move(carry):
        state, (_, free, _, reward) = carry
        better = reward > state.center_reward
        return better if config.improvement == "first" else better & ~free.any()

    def move(carry):
        state, (_, _, row, reward) = carry
        state = _move(state, row, reward)
        return state, _look(state, task)

    # each move raises the centre's reward, so the loop ends
    return jax.lax.while_loop(should_move, move, (state, _look(state, task)))


def _propose(config, state: LocalSearchState, task: TaskArrays):
    """One proposal: the centre's first unevaluated neighbour, or a restart."""
    state, (rows, free, _, _) = _climb(config, state, task)
    restart = ~free.any()
    k = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.ledger.n_asked)
    restart_row = unevaluated_row(k, task.valid_rows,  # the budget leaves one
                                  lambda r: jnp.any(r == state.ledger.rows), restart)
    row = jnp.where(restart, restart_row, rows[first_in_order(free, state.order)])
    state = state.replace(restarting=restart, ledger=state.ledger.asked(row[None]))
    return row, state, restart


def ask(config, state: LocalSearchState, task, k: int, seeding: bool):
    if seeding:
        rows, state = take_planned(state, state.init_rows, k)
        return rows, state, {}

    def one(state, _):
        row, state, restart = _propose(config, state, task)
        return state, (row, restart)

    state, (rows, restarts) = jax.lax.scan(one, state, None, length=k)
    return rows, state, {"restart": restarts.astype(jnp.float32)}


def tell(config, state: LocalSearchState, task, ids, rewards, seeding: bool):
    rows = state.ledger.rows[ids]
    state = state.replace(ledger=state.ledger.told(ids, rewards))
    if seeding:  # the centre: the best initial network told so far (first of ties)
        known = _lookup(state.ledger, state.init_rows)[1]
        j = jnp.argmax(known)
        return _move(state.replace(moves=jnp.zeros((), jnp.int32)), state.init_rows[j],
                     known[j]), {}

    def one(state, item):
        row, reward = item
        moves = state.restarting | ((config.improvement == "first")
                                    & (reward > state.center_reward))
        state = jax.lax.cond(moves, lambda s: _move(s, row, reward), lambda s: s, state)
        return state.replace(restarting=jnp.asarray(False)), None

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
