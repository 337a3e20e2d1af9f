"""n-step returns with partial-episode bootstrapping (Pardo et al. 2018), as fixed arrays.

Each environment keeps a window of its last n transitions. Every step the window shifts
by one and the oldest transition's n-step target is emitted:

    G = sum_{k<m} gamma^k r_k,   target = G + d * Q(s_boot),

where m is the number of steps until the episode ended (at most n). If the episode ended
with the agent stopping (terminal), d = 0; if it hit the time limit (truncated) at step
k, it is bootstrapped from the state it reached: s_boot = next_row_k, d = gamma^(k+1) —
the time limit is not part of the task, so the value beyond it is not zero. Otherwise
s_boot = next_row_{n-1}, d = gamma^n. Targets are emitted n-1 steps late, so the window
of the emitted transition is always complete.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from catchjax.methods.dqn.env import Transition


@struct.dataclass
class Window:
    """The last n transitions of one environment, oldest first; ``valid`` is False for the
    slots not yet filled at the start of training."""

    steps: Transition  # every leaf [n]
    valid: jnp.ndarray  # bool [n]


@struct.dataclass
class NStepItem:
    """What the replay buffer stores: enough to compute the double-Q target later."""

    row: jnp.ndarray  # i32, state of the first step
    action: jnp.ndarray  # i32
    ret: jnp.ndarray  # f32, discounted reward sum G
    discount: jnp.ndarray  # f32, d (0 when the episode ended with a stop)
    boot_row: jnp.ndarray  # i32, s_boot


def empty_window(n: int) -> Window:
    z = jnp.zeros((n,), jnp.int32)
    f = jnp.zeros((n,), bool)
    return Window(Transition(z, z, jnp.zeros((n,), jnp.float32), z, f, f), f)


def push(window: Window, tr: Transition) -> Window:
    """Append ``tr`` as the newest transition, dropping the oldest."""
    steps = jax.tree.map(lambda w, x: jnp.concatenate([w[1:], x[None]]), window.steps, tr)
    return Window(steps, jnp.concatenate([window.valid[1:], jnp.ones((1,), bool)]))


def oldest_target(window: Window, gamma: float):
    """The n-step item of the oldest transition in a full window, and whether it is real."""
    s = window.steps
    n = s.reward.shape[0]
    ended = s.terminal | s.truncated
    # alive[k]: step k belongs to the first transition's episode (no end before k)
    alive = jnp.concatenate([jnp.ones((1,), bool), jnp.cumsum(ended[:-1]) == 0])
    powers = gamma ** jnp.arange(n, dtype=jnp.float32)
    ret = jnp.sum(jnp.where(alive, powers * s.reward, 0.0))
    ends_here = alive & ended
    any_end = jnp.any(ends_here)
    last = jnp.where(any_end, jnp.argmax(ends_here), n - 1)  # the last step that counts
    discount = jnp.where(s.terminal[last] & any_end, 0.0, gamma ** (last + 1.0))
    item = NStepItem(s.row[0], s.action[0], ret, discount.astype(jnp.float32),
                     s.next_row[last])
    return item, window.valid[0]
