"""The Q-network of the edit-based agent (paper 002 §4, SPEC §4).

Each architecture (its L one-hot decisions, flattened) is embedded by three linear+ReLU
layers; a transformer encoder (2 layers, 4 heads by default) reads the sequence
[current, neighbour_1, ..., neighbour_S] with absent neighbours masked out of attention;
dueling heads of three linear layers each (Wang et al. 2016) give the value V from the
current architecture's token and one advantage per action: "stop" from the current
token, "move to neighbour s" from neighbour s's token. Q = V + A - mean of A over the
allowed actions; disallowed actions get ``MASKED_Q``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

MASKED_Q = -1e9  # finite, so that 0 * Q of a disallowed action stays 0 (never inf * 0)


def three_layers(hidden: int, out: int):
    return nn.Sequential([nn.Dense(hidden), nn.relu, nn.Dense(hidden), nn.relu,
                          nn.Dense(out)])


def attention(query, key, value, bias=None, mask=None, dtype=None, precision=None, **_):
    """Flax's dot-product attention (softmax(q k^T / sqrt(d)) v, masked keys excluded)
    with the softmax normalized by a multiplication with 1 / sum: ``jax.nn.softmax``
    divides by the sum, which XLA rewrites into that multiplication in some programs
    and not in others, so the DQN's training gave other bits on 2 devices than on 1
    (see catchjax.optimizers). No dropout (the layers use none)."""
    del dtype
    query = query / jnp.sqrt(query.shape[-1]).astype(query.dtype)
    logits = jnp.einsum("...qhd,...khd->...hqk", query, key, precision=precision)
    if bias is not None:
        logits = logits + bias
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    e = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    weights = e * (1.0 / jnp.sum(e, axis=-1, keepdims=True))
    return jnp.einsum("...hqk,...khd->...qhd", weights, value, precision=precision)


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer (self-attention, then a ReLU MLP of 2x width)."""

    width: int
    heads: int

    @nn.compact
    def __call__(self, x, attend):
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.width,
                                           attention_fn=attention)(
            h, h, mask=attend)
        x = x + h
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.width)(nn.relu(nn.Dense(2 * self.width)(h)))
        return x + h


def dueling(value, advantages, mask):
    """Q = V + A - mean(A over allowed actions); disallowed actions get MASKED_Q."""
    inv_n = 1.0 / jnp.maximum(jnp.sum(mask), 1)  # a product, as in attention()
    mean_adv = jnp.sum(jnp.where(mask, advantages, 0.0)) * inv_n
    return jnp.where(mask, value + advantages - mean_adv, MASKED_Q)


class QNetwork(nn.Module):
    """Q-values of one state: ``onehots`` [1 + S, L*K] (current first), ``mask`` bool
    [1 + S] (True = allowed action / present token; entry 0 = stop, always True)."""

    width: int = 256
    heads: int = 4
    layers: int = 2

    @nn.compact
    def __call__(self, onehots, mask):
        x = nn.Dense(self.width)(onehots)
        x = nn.Dense(self.width)(nn.relu(x))
        x = nn.Dense(self.width)(nn.relu(x))
        x = nn.relu(x)
        # which token is the current architecture: the encoder is otherwise order-blind
        is_current = (jnp.arange(onehots.shape[0]) == 0)[:, None].astype(x.dtype)
        x = x + is_current * self.param("current_token", nn.initializers.normal(0.02),
                                        (self.width,))
        attend = (mask[:, None] & mask[None, :])[None]  # [heads=1 broadcast, q, k]
        for _ in range(self.layers):
            x = EncoderLayer(self.width, self.heads)(x, attend)
        x = nn.LayerNorm()(x)
        value = three_layers(self.width, 1)(x[0])[0]
        advantages = three_layers(self.width, 1)(x)[:, 0]
        return dueling(value, advantages, mask)


def observe(row, task):
    """The network's input for architecture ``row``: one-hot tokens of [row, neighbours]
    (absent neighbours as zeros) and the action mask."""
    rows = jnp.concatenate([row[None], task.neighbors[row]])
    present = rows >= 0
    K = task.prefix_mask.shape[2]
    onehots = jax.nn.one_hot(task.row_actions[jnp.maximum(rows, 0)], K)
    onehots = onehots.reshape(rows.shape[0], -1) * present[:, None]
    return onehots, present


def q_values(network: QNetwork, params, rows, task):
    """Q-values [..., n_actions] of a batch of architectures (any leading shape)."""
    flat = rows.reshape(-1)
    obs, mask = jax.vmap(observe, in_axes=(0, None))(flat, task)
    q = jax.vmap(lambda o, m: network.apply(params, o, m))(obs, mask)
    return q.reshape(rows.shape + q.shape[-1:])
