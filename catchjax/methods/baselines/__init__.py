"""Baselines (SPEC §3): random search, regularized evolution, REINFORCE.

Each is ``search(config, key, task_arrays) -> SearchTrace``, a pure function that jit and
vmap take as is, so N trials are one vmapped call (see :mod:`catchjax.sweep`).
"""

from catchjax.core import SearchTrace
from catchjax.methods.baselines.evolution import EvolutionConfig, regularized_evolution
from catchjax.methods.baselines.random_search import RandomSearchConfig, random_search
from catchjax.methods.baselines.reinforce import ReinforceConfig, reinforce

__all__ = [
    "SearchTrace",
    "RandomSearchConfig",
    "random_search",
    "EvolutionConfig",
    "regularized_evolution",
    "ReinforceConfig",
    "reinforce",
]
