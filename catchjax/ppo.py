"""PPO's clipped surrogate objective (Schulman et al. 2017, Eq. 7) for the CATCH controller.

The controller's "episode" is one architecture: its log-probability under the current
policy is compared with the log-probability stored when it was sampled, and the
advantage is the network's normalized reward (CATCH §3.2, §3.4).
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
from jax import lax

LOG_RATIO_MAX = 20.0


def clipped_surrogate_loss(log_prob, old_log_prob, advantage, mask=None, clip_eps: float = 0.2):
    """L_c = -mean_i min(rho_i A_i, clip(rho_i, 1-eps, 1+eps) A_i), rho_i = pi/pi_old.

    All inputs are ``[B]``; ``mask`` (bool ``[B]``) excludes padded entries of a
    fixed-size batch from the mean.
    """
    chex.assert_rank([log_prob, old_log_prob, advantage], 1)
    chex.assert_equal_shape([log_prob, old_log_prob, advantage])
    # log rho bounded: an entry far off the policy that sampled it (a network the pick
    # took from outside the candidates, catch.propose) would overflow exp to inf, and
    # inf * 0 in the unselected branch's gradient is NaN. Beyond +-20 the ratio is far
    # outside the clip range either way; inside it nothing changes
    ratio = jnp.exp(jnp.clip(log_prob - old_log_prob, -LOG_RATIO_MAX, LOG_RATIO_MAX))
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
    objective = jnp.minimum(unclipped, clipped)
    if mask is None:
        return -jnp.mean(objective)
    w = mask.astype(objective.dtype)
    return -jnp.sum(objective * w) * (1.0 / jnp.maximum(jnp.sum(w), 1.0))  # see _masked_mean_var


def masked_mean_std(x, mask=None, eps: float = 1e-8):
    """Mean and std (with ``eps`` added to the variance) over the masked-in entries."""
    mean, var = _masked_mean_var(x, mask, eps)
    return mean, jnp.sqrt(var)


def masked_mean_inv_std(x, mask=None, eps: float = 1e-8):
    """Mean and 1 / std over the masked-in entries (``eps`` added to the variance).

    Standardize as ``(x - mean) * inv_std``, never ``(x - mean) / std``: XLA rewrites
    ``a / sqrt(b)`` into ``a * rsqrt(b)`` only where it sees the two together, and that
    depends on how the program is compiled (one device or several), so the division gave
    a trial other bits on 2 devices than on 1. Written as rsqrt, every program computes
    the same thing."""
    mean, var = _masked_mean_var(x, mask, eps)
    return mean, lax.rsqrt(var)


def _masked_mean_var(x, mask, eps):
    # multiplied by 1 / n, not divided by n: XLA turns a division by a value that is the
    # same for every trial into a multiplication by its reciprocal, and whether it can
    # see that depends on the program (see masked_mean_inv_std)
    w = jnp.ones_like(x) if mask is None else mask.astype(x.dtype)
    inv_n = 1.0 / jnp.maximum(jnp.sum(w), 1.0)
    mean = jnp.sum(x * w) * inv_n
    return mean, jnp.sum(w * (x - mean) ** 2) * inv_n + eps


def normalize(x, mask=None, eps: float = 1e-8):
    """(x - mean) / std over the masked-in entries; all-equal values give zeros, not NaN."""
    mean, inv_std = masked_mean_inv_std(x, mask, eps)
    inside = jnp.ones_like(x, bool) if mask is None else mask
    return jnp.where(inside, (x - mean) * inv_std, 0.0)
