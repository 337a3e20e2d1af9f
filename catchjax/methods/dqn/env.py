"""The edit environment of the transferable NAS agent (paper 002 §3, SPEC §4), gymnax-style.

State = the current architecture (a table row). Action 0 stops the episode; action
``1 + s`` moves to the neighbour in slot ``s`` of ``TaskArrays.neighbors`` (the
architecture that changes one decision; slots with no searchable neighbour, e.g. the
macro space's structurally invalid edits, are masked out). Reward = change of the
(shaped) reward metric, so the return of an episode is the improvement it made. An
episode ends when the agent stops (terminal: no bootstrap) or after ``max_steps`` edits
(truncated: a time limit, bootstrapped, Pardo et al. 2018). Episodes start from a
uniformly drawn searchable architecture.

Pure functions of (state, task arrays, reward vector): jit and vmap take them as is, so
thousands of environments step as one array operation. The reward vector is passed
separately from ``TaskArrays`` so one table (neighbours, masks) serves several training
tasks (multi-task pools, transfer).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import uniform_rows

STOP = 0  # action index of "stop"; action 1 + s = neighbour slot s


@struct.dataclass
class EnvState:
    row: jnp.ndarray  # i32, the current architecture
    t: jnp.ndarray  # i32, edits made in this episode


@struct.dataclass
class Transition:
    """One environment step, as the n-step accumulator sees it."""

    row: jnp.ndarray  # i32, architecture the action was taken in
    action: jnp.ndarray  # i32
    reward: jnp.ndarray  # f32
    next_row: jnp.ndarray  # i32, architecture after the action (before any reset)
    terminal: jnp.ndarray  # bool, the agent stopped: nothing to bootstrap from
    truncated: jnp.ndarray  # bool, time limit: bootstrap from next_row (PEB)


def n_actions(task: TaskArrays) -> int:
    """1 (stop) + the number of neighbour slots, L*(K-1)."""
    return 1 + task.neighbors.shape[1]


def action_mask(row, task: TaskArrays) -> jnp.ndarray:
    """bool [n_actions]: stop is always allowed, a move only to a searchable neighbour."""
    return jnp.concatenate([jnp.ones((1,), bool), task.neighbors[row] >= 0])


def reset(key, task: TaskArrays) -> EnvState:
    return EnvState(row=uniform_rows(key, task.valid_rows, ()), t=jnp.zeros((), jnp.int32))


def step(key, state: EnvState, action, task: TaskArrays, reward, max_steps: int,
         pool_task=None):
    """Apply ``action``; returns (next state, transition). An ended episode is reset at
    once (from ``key``), so a vector of environments never waits on one another.

    ``reward``: the shaped metric per architecture [n_archs]; or, with ``pool_task``, the
    pool's [P, n_archs] and the row this episode runs on (a vector of environments on
    different pool tasks then reads two entries each instead of copying a row per env).

    ``action`` must be allowed by :func:`action_mask` (the agent masks; an invalid move
    would index slot -1, so it is turned into a stop here rather than read garbage).
    """
    def value(row):
        return reward[row] if pool_task is None else reward[pool_task, row]

    slot = jnp.maximum(action - 1, 0)
    target = task.neighbors[state.row, slot]
    moves = (action != STOP) & (target >= 0)
    next_row = jnp.where(moves, target, state.row)
    terminal = ~moves
    t = state.t + 1
    truncated = moves & (t >= max_steps)
    tr = Transition(state.row, action.astype(jnp.int32),
                    jnp.where(moves, value(next_row) - value(state.row), 0.0), next_row,
                    terminal, truncated)
    fresh = reset(key, task)
    ended = terminal | truncated
    nxt = EnvState(row=jnp.where(ended, fresh.row, next_row),
                   t=jnp.where(ended, 0, t).astype(jnp.int32))
    return nxt, tr
