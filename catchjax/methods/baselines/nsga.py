"""A front-keeping evolution for tasks with several objectives (issue 35): NSGA-II's
non-dominated sorting and crowding distance (Deb et al. 2002, IEEE TEC 6(2)) in a steady
state, written like regularized evolution for jit and vmap.

A population of ``population`` networks. Each child: a tournament of ``sample_size``
members drawn with replacement, won by the lowest non-domination rank and, among equal
ranks, the largest crowding distance (NSGA-II's crowded comparison); the winner changed
in one decision (a uniformly chosen valid neighbour, as in regularized evolution). When
the child's objectives are known, the population and the child are ranked together and
the worst of them leaves (the highest rank, then the smallest crowding distance): the
population keeps the front found so far and spreads along it. (mu + 1), not NSGA-II's
generational (mu + mu): one child per query, so it runs through ask/tell's steps.

The objectives are the task's minimized, [0, 1]-scaled columns (``TaskArrays.objectives``);
the scalarized reward a sweep's trial carries is recorded but not used to choose.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, uniform_rows
from catchjax.errors import CatchjaxError
from catchjax.methods.baselines.evolution import n_initial, one_edit, ready
from catchjax.stepping import run_on_table, take_planned


@dataclasses.dataclass(frozen=True)
class NSGAConfig:
    budget: int = 50
    population: int = 10  # as regularized evolution (its per-trial hypervolume: below)
    sample_size: int = 2  # NSGA-II's binary tournament

    def validate(self, task) -> None:
        if self.population < 2 or self.sample_size < 1:
            raise CatchjaxError(f"nsga needs population >= 2 and sample_size >= 1, got "
                                f"{self.population} and {self.sample_size}")
        if getattr(task, "table", None) is None or task.arrays.objectives is None:
            raise CatchjaxError(
                "nsga ranks networks by several objectives, read from a table task with "
                "two or more (--objective ... --objective ..., or --objectives "
                "DEVICE-latency); for one reward use rea, and through ask/tell any other "
                "method with objectives= (it scalarizes the told values)")


@struct.dataclass
class NSGAState:
    ledger: Ledger
    init_rows: jnp.ndarray  # i32 [n_init], the random initial population, drawn up front
    loop_key: jnp.ndarray
    pop_rows: jnp.ndarray  # i32 [population]
    pop_objectives: jnp.ndarray  # f32 [population, d], minimized; +inf: an empty slot
    members: jnp.ndarray  # i32, slots filled so far


def start(config: NSGAConfig, key, task: TaskArrays, agent=None) -> NSGAState:
    init_key, loop_key = jax.random.split(key)
    init_rows = uniform_rows(init_key, task.valid_rows, (n_initial(config),))
    d = task.objectives.shape[1]
    return NSGAState(Ledger.empty(config.budget), init_rows, loop_key,
                     jnp.zeros((config.population,), jnp.int32),
                     jnp.full((config.population, d), jnp.inf), jnp.zeros((), jnp.int32))


def rank_and_crowding(objectives, valid):
    """(i32 [n] non-domination rank, 0 = the front, n for invalid members; f32 [n]
    crowding distance within each rank, inf at a rank's ends, -inf for invalid members)
    of minimized ``objectives`` [n, d] (Deb et al. 2002, §III-A and §III-B)."""
    n, d = objectives.shape
    o = objectives
    dominates = (jnp.all(o[:, None, :] <= o[None, :, :], -1)
                 & jnp.any(o[:, None, :] < o[None, :, :], -1)
                 & valid[:, None] & valid[None, :])  # [i, j]: i dominates j

    def peel(k, carry):  # the members no remaining member dominates get rank k
        rank, remaining = carry
        front = remaining & ~jnp.any(dominates & remaining[:, None], axis=0)
        return jnp.where(front, k, rank), remaining & ~front

    rank, _ = jax.lax.fori_loop(0, n, peel, (jnp.full((n,), n, jnp.int32), valid))
    # each member's neighbours along each objective among its own rank, ties by index
    same = (rank[:, None] == rank[None, :]) & valid[None, :] & ~jnp.eye(n, dtype=bool)
    idx = jnp.arange(n)
    v = o[:, None, :], o[None, :, :]  # [i, m, j]
    after = same[:, :, None] & ((v[1] > v[0]) | ((v[1] == v[0]) & (idx[None, :, None]
                                                                    > idx[:, None, None])))
    before = same[:, :, None] & ~after
    upper = jnp.min(jnp.where(after, v[1], jnp.inf), axis=1)  # [n, d]
    lower = jnp.max(jnp.where(before, v[1], -jnp.inf), axis=1)
    span = jnp.max(jnp.where(valid[:, None], o, -jnp.inf), 0) \
        - jnp.min(jnp.where(valid[:, None], o, jnp.inf), 0)
    gap = jnp.where(jnp.isfinite(upper) & jnp.isfinite(lower),
                    (upper - lower) / jnp.where(span > 0, span, 1.0), jnp.inf)
    crowding = jnp.where(valid, jnp.sum(gap, axis=1), -jnp.inf)
    return rank, crowding


def mutate(config: NSGAConfig, state: NSGAState, task: TaskArrays, i, rank, crowding):
    """Child ``i`` (0-based after the initial population): the crowded-comparison winner
    of a tournament (``rank``, ``crowding``: the population's), changed in one decision."""
    k_tour, k_mut = jax.random.split(jax.random.fold_in(state.loop_key, i))
    contenders = jax.random.randint(k_tour, (config.sample_size,), 0,
                                    jnp.maximum(state.members, 1))
    r = rank[contenders]
    best = jnp.where(r == r.min(), crowding[contenders], -jnp.inf)
    return one_edit(k_mut, task, state.pop_rows[contenders[jnp.argmax(best)]])


def ask(config, state: NSGAState, task, k: int, seeding: bool):
    if seeding:
        return *take_planned(state, state.init_rows, k), {}
    # k children of the current population, ranked once (k > 1: asynchronous workers)
    valid = jnp.arange(config.population) < state.members
    rank, crowding = rank_and_crowding(state.pop_objectives, valid)
    first = state.ledger.n_asked - n_initial(config)
    rows = jax.lax.map(lambda j: mutate(config, state, task, first + j, rank, crowding),
                       jnp.arange(k))
    return rows, state.replace(ledger=state.ledger.asked(rows)), {}


def _admit(config: NSGAConfig, state: NSGAState, row, objectives) -> NSGAState:
    """The told network joins: into an empty slot, or it and the population are ranked
    together and the worst of them (maybe itself) leaves."""
    p = config.population
    both = jnp.concatenate([state.pop_objectives, objectives[None]])
    valid = jnp.concatenate([jnp.arange(p) < state.members, jnp.ones((1,), bool)])
    rank, crowding = rank_and_crowding(both, valid)
    worst_rank = jnp.max(jnp.where(valid, rank, -1))
    # the least crowded of the worst rank; its ends (inf) last, ties to the first slot
    crowd = jnp.where(jnp.isinf(crowding), 1e30, crowding)
    worst = jnp.argmin(jnp.where(valid & (rank == worst_rank), crowd, 3e30))
    slot = jnp.where(state.members < p, state.members, worst)
    keep = slot < p
    slot = jnp.minimum(slot, p - 1)
    return state.replace(
        pop_rows=jnp.where(keep, state.pop_rows.at[slot].set(row), state.pop_rows),
        pop_objectives=jnp.where(keep, state.pop_objectives.at[slot].set(objectives),
                                 state.pop_objectives),
        members=jnp.minimum(state.members + 1, p))


def tell(config, state: NSGAState, task, ids, rewards, seeding: bool):
    def one(state, item):
        i, reward = item
        row = state.ledger.rows[i]
        state = _admit(config, state, row, task.objectives[row])
        return state.replace(ledger=state.ledger.told(i[None], reward[None])), None

    state, _ = jax.lax.scan(one, state, (ids, rewards))
    return state, {}


# ready: regularized evolution's (the initial population together; then children once
# every initial network is told -- tournaments need the population)
STEPPER = Stepper(start=start, ask=ask, tell=tell, first=n_initial, ready=ready)


def nsga(config: NSGAConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task)[0]
