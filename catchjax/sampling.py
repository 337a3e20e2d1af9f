"""Sampling action sequences under the per-step validity masks of a task (SPEC §1).

Invalid choices get a logit of ``NEG_INF`` before the softmax, so they have probability
0 and every sampled sequence is an architecture the task can evaluate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -1e9  # finite, so log-softmax and its gradient stay NaN-free


def prefix_codes(actions: jnp.ndarray, n_choices: int) -> jnp.ndarray:
    """Base-K code of the first t actions for t = 0..L-1 (``[L]`` int32)."""
    L = actions.shape[-1]
    codes = [jnp.zeros((), jnp.int32)]
    for t in range(L - 1):
        codes.append(codes[-1] * n_choices + actions[t])
    return jnp.stack(codes)


def sequence_code(actions: jnp.ndarray, n_choices: int) -> jnp.ndarray:
    """Base-K code of a whole sequence (first action most significant)."""
    L = actions.shape[-1]
    weights = n_choices ** jnp.arange(L - 1, -1, -1, dtype=jnp.int32)
    return jnp.sum(actions * weights, axis=-1)


def step_masks(actions: jnp.ndarray, prefix_mask: jnp.ndarray) -> jnp.ndarray:
    """Validity mask of every step given the earlier actions of ``actions``: ``[L, K]``."""
    L, _, K = prefix_mask.shape
    return prefix_mask[jnp.arange(L), prefix_codes(actions, K)]


def masked_log_probs(logits: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    return jax.nn.log_softmax(jnp.where(mask, logits, NEG_INF), axis=-1)


def sample_sequence(key, logits_fn, prefix_mask):
    """Sample one sequence step by step; ``logits_fn(t, actions_so_far) -> [K]`` logits.

    ``actions_so_far`` holds the actions of steps < t and zeros after. Returns
    ``(actions [L] int32, log_prob scalar)`` of the masked distribution.
    """
    actions, logp, _ = _sample(key, logits_fn, prefix_mask, None)
    return actions, logp


def sample_sequence_tempered(key, logits_fn, prefix_mask, temperature):
    """:func:`sample_sequence` from the tempered policy: every step draws from
    softmax(logits / ``temperature``) (T < 1 sharpens it, T = 1 is the policy itself).

    Returns ``(actions [L] int32, log_prob under the untempered policy, log_prob under
    the tempered one)``: the first is what a policy-gradient update of the policy itself
    needs, the second what the sampling distribution's entropy is estimated from.
    """
    return _sample(key, logits_fn, prefix_mask, temperature)


def _sample(key, logits_fn, prefix_mask, temperature):
    """The step-by-step draw of both: from the tempered distribution when ``temperature``
    is given, else from the policy (its two log-probs are then the same)."""
    L, _, K = prefix_mask.shape

    def step(carry, t):
        actions, prefix, logp, logp_t = carry
        mask = prefix_mask[t, prefix]
        logits = logits_fn(t, actions)
        log_probs = masked_log_probs(logits, mask)
        drawn = log_probs if temperature is None else masked_log_probs(logits / temperature,
                                                                       mask)
        a = jax.random.categorical(jax.random.fold_in(key, t), drawn)
        return (actions.at[t].set(a), prefix * K + a, logp + log_probs[a],
                logp_t + drawn[a]), None

    init = (jnp.zeros(L, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros(()), jnp.zeros(()))
    (actions, _, logp, logp_t), _ = jax.lax.scan(step, init, jnp.arange(L))
    return actions, logp, logp_t
