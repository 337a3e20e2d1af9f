"""The optimizers of every network catchjax trains -- Adam (Kingma & Ba 2015, Algorithm 1)
and clipping by the global norm -- written so that a trial's floating point does not
depend on how XLA compiled the sweep around it.

``optax.adam`` divides each moment by its bias correction ``1 - beta^t``, a number per
trial that vmap broadcasts over the parameters. XLA's simplifier turns such a division
by a broadcast into a multiplication by the reciprocal when it sees the broadcast, and
whether it sees it depends on the program: with a sweep split over 2 devices it kept the
division that the one-device program had rewritten, and 7 of 48 CATCH-meta trials chose
other networks (measured, synthetic NB201, default sizes). Here the reciprocals are
taken explicitly, so every program computes the same operations. Same arithmetic as
``optax.adam`` otherwise (eps outside the square root, no eps_root), and the same state
pytree, so agents saved with ``optax.adam``'s state load unchanged. The same holds for
``optax.clip_by_global_norm``'s division by the norm.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["adam", "clip_by_global_norm"]


def adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> optax.GradientTransformation:
    """``optax.adam(learning_rate, b1, b2, eps)`` with the bias corrections multiplied in
    as reciprocals: m_hat = m * (1 / (1 - b1^t)), v_hat = v * (1 / (1 - b2^t))."""
    moments = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

    def update(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        inv1 = 1.0 / (1.0 - b1 ** count)
        inv2 = 1.0 / (1.0 - b2 ** count)
        out = jax.tree.map(
            lambda m, v: (m * inv1.astype(m.dtype))
            / (jnp.sqrt(v * inv2.astype(v.dtype)) + eps), mu, nu)
        return out, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.chain(optax.GradientTransformation(moments.init, update),
                       optax.scale_by_learning_rate(learning_rate))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm(max_norm)``: updates scaled by max_norm / ||g|| when the
    global norm ||g|| is at least ``max_norm``, as a multiplication by 1 / ||g||."""

    def update(updates, state, params=None):
        del params
        g_norm = optax.tree.norm(updates)
        keep = g_norm < max_norm
        inv = 1.0 / g_norm
        return jax.tree.map(
            lambda t: jax.lax.select(keep, t, t * inv.astype(t.dtype) * max_norm),
            updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)
