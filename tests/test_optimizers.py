"""catchjax.optimizers: optax's Adam and global-norm clipping, with the reciprocals taken
explicitly (so a trial's bits do not depend on the device count; tests/test_batched.py).
Here: the same arithmetic and the same state pytree as optax's."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from catchjax import optimizers


def _grads(i):
    return {"w": jnp.sin(jnp.arange(12.0).reshape(3, 4) + i) * 10.0 ** (i % 3),
            "b": jnp.cos(jnp.arange(4.0) * (i + 1))}


def test_adam_follows_optax_adam_and_keeps_its_state_pytree():
    params = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)}
    ours, theirs = optimizers.adam(3e-3), optax.adam(3e-3)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    # an agent saved with optax.adam's state restores into ours (checkpoints)
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_theirs)
    p_ours = p_theirs = params
    for i in range(20):
        u_ours, s_ours = ours.update(_grads(i), s_ours)
        u_theirs, s_theirs = theirs.update(_grads(i), s_theirs)
        p_ours = optax.apply_updates(p_ours, u_ours)
        p_theirs = optax.apply_updates(p_theirs, u_theirs)
    for a, b in zip(jax.tree.leaves((p_ours, s_ours)), jax.tree.leaves((p_theirs, s_theirs))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    assert int(s_ours[0].count) == 20
    assert not np.allclose(p_ours["w"], params["w"])  # it moved


def test_clipping_by_the_global_norm_follows_optax():
    g = _grads(2)  # global norm ~ 230
    norm = float(optax.tree.norm(g))
    for max_norm in (1.0, norm * 0.5, norm * 2.0):
        ours, _ = optimizers.clip_by_global_norm(max_norm).update(g, optax.EmptyState())
        theirs, _ = optax.clip_by_global_norm(max_norm).update(g, optax.EmptyState())
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
        assert float(optax.tree.norm(ours)) <= min(norm, max_norm) * (1 + 1e-5)
    kept, _ = optimizers.clip_by_global_norm(norm * 2.0).update(g, optax.EmptyState())
    for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(g)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # below: untouched
