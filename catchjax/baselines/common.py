"""What every search method returns: the architectures it evaluated, in order."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class SearchTrace:
    """The ``budget`` table queries of one search trial, in the order they were made."""

    rows: jnp.ndarray  # i32 [budget], table row of each evaluated architecture
    rewards: jnp.ndarray  # f32 [budget], the reward each query returned


def uniform_rows(key, valid_rows: jnp.ndarray, shape) -> jnp.ndarray:
    """Rows drawn uniformly (with replacement) from the searchable architectures."""
    idx = jax.random.randint(key, shape, 0, valid_rows.shape[0])
    return valid_rows[idx]
