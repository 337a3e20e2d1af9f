"""The three networks of CATCH (paper §3.1-3.3, §4.1): context encoder, controller, evaluator.

All are small Flax MLPs on one unbatched example (callers vmap). Shapes use L decisions
with K choices; an architecture is fed as its L one-hot vectors, flattened to L*K.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from catchjax import sampling


class MLP(nn.Module):
    hidden: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


def product_of_gaussians(mu, var, mask):
    """Eq. (1): q(z|c_1:N) proportional to prod_i N(mu_i, var_i) over the masked-in contexts.

    The product of diagonal Gaussians is Gaussian with precision sum_i 1/var_i and mean
    var * sum_i mu_i/var_i. With no context at all it falls back to the prior N(0, I).
    ``mu``, ``var``: [N, z]; ``mask``: bool [N].
    """
    w = mask[:, None].astype(mu.dtype)
    precision = jnp.sum(w / var, axis=0)
    any_context = jnp.any(mask)
    safe = jnp.where(any_context, precision, 1.0)
    post_var = 1.0 / safe
    post_mu = post_var * jnp.sum(w * mu / var, axis=0)
    return jnp.where(any_context, post_mu, 0.0), jnp.where(any_context, post_var, 1.0)


def kl_to_prior(mu, var):
    """KL(N(mu, diag var) || N(0, I)), the information bottleneck of Eq. (2)."""
    import distrax  # here, not at the top: its TFP import costs every process ~0.4 s

    q = distrax.MultivariateNormalDiag(mu, jnp.sqrt(var))
    p = distrax.MultivariateNormalDiag(jnp.zeros_like(mu), jnp.ones_like(mu))
    return q.kl_divergence(p)


class ContextEncoder(nn.Module):
    """f_phi: each context c_i = (one-hot arch, normalized reward) -> (mu_i, var_i)."""

    z_dim: int = 10
    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, contexts, mask):
        """contexts [N, L*K + 1], mask bool [N] -> posterior (mu [z], var [z])."""
        out = MLP(self.hidden, 2 * self.z_dim)(contexts)  # Dense maps each row alike
        mu, raw = out[:, : self.z_dim], out[:, self.z_dim :]
        var = jax.nn.softplus(raw) + 1e-4  # as in PEARL: softplus keeps variances positive
        return product_of_gaussians(mu, var, mask)


def sample_z(key, mu, var):
    """Reparameterized z ~ N(mu, var): gradients flow to the encoder through mu and var."""
    return mu + jnp.sqrt(var) * jax.random.normal(key, mu.shape)


class Controller(nn.Module):
    """pi(a_l | [a_1..a_{l-1}, 0..0], z): an MLP over z and the one-hots taken so far.

    It outputs logits for every decision, ``[L, K]``; step l reads row l (equivalent to
    one output head per decision). Invalid actions are masked by the caller.
    """

    n_decisions: int
    n_choices: int
    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, z, taken_onehots):
        x = jnp.concatenate([z, taken_onehots.reshape(-1)])
        out = MLP(self.hidden, self.n_decisions * self.n_choices)(x)
        return out.reshape(self.n_decisions, self.n_choices)


def taken_onehots(actions, t, n_choices):
    """One-hots of actions[:t], zeros for the decisions not yet taken: [L, K]."""
    onehot = jax.nn.one_hot(actions, n_choices)
    return jnp.where((jnp.arange(actions.shape[0]) < t)[:, None], onehot, 0.0)


def controller_sample(controller: Controller, params, key, z, prefix_mask):
    """Sample one architecture from the controller under the task's masks.

    Returns (actions [L] int32, log_prob).
    """
    return sampling.sample_sequence(key, _next_logits(controller, params, z), prefix_mask)


def _next_logits(controller: Controller, params, z):
    """logits_fn(t, actions so far) -> the controller's [K] logits of decision t."""
    K = controller.n_choices

    def logits_fn(t, actions):
        return controller.apply(params, z, taken_onehots(actions, t, K))[t]

    return logits_fn


def controller_sample_tempered(controller: Controller, params, key, z, prefix_mask,
                               temperature):
    """:func:`controller_sample` with each decision's distribution raised to 1/T and
    renormalized (:func:`catchjax.sampling.sample_sequence_tempered`). Returns (actions [L] int32,
    log pi(actions | z), log of the tempered policy's probability of them)."""
    return sampling.sample_sequence_tempered(key, _next_logits(controller, params, z),
                                             prefix_mask, temperature)


def controller_step_log_probs(controller: Controller, params, z, actions, prefix_mask):
    """log pi(. | a_<l, z) of every decision along ``actions`` (teacher forcing), masked:
    ``[L, K]``, and the masks ``[L, K]``."""
    L, K = controller.n_decisions, controller.n_choices
    masks = sampling.step_masks(actions, prefix_mask)

    def step_logits(t):
        return controller.apply(params, z, taken_onehots(actions, t, K))[t]

    logits = jax.vmap(step_logits)(jnp.arange(L))
    return sampling.masked_log_probs(logits, masks), masks


def sequence_log_prob(step_log_probs, actions):
    """log pi(actions | z) from the step log-probabilities."""
    return jnp.sum(jnp.take_along_axis(step_log_probs, actions[:, None], axis=1))


def sequence_entropy(step_log_probs, masks):
    """Sum over decisions of the step entropies: the entropy of the whole-architecture
    policy when the actions are sampled from it (chain rule)."""
    return -jnp.sum(jnp.where(masks, jnp.exp(step_log_probs) * step_log_probs, 0.0))


def controller_log_prob(controller: Controller, params, z, actions, prefix_mask):
    """log pi(actions | z) of a whole sequence under the masks (teacher forcing)."""
    log_probs, _ = controller_step_log_probs(controller, params, z, actions, prefix_mask)
    return sequence_log_prob(log_probs, actions)


def controller_entropy(controller: Controller, params, z, actions, prefix_mask):
    """Entropy of pi(. | z) along ``actions`` (:func:`sequence_entropy`), used for PPO's
    entropy bonus."""
    return sequence_entropy(*controller_step_log_probs(controller, params, z, actions,
                                                       prefix_mask))


class Evaluator(nn.Module):
    """f_theta_e(m, z): predicted (normalized) score of architecture m on the task z encodes."""

    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, arch_onehot, z):
        return MLP(self.hidden, 1)(jnp.concatenate([arch_onehot.reshape(-1), z]))[0]
