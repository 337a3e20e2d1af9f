"""A search on a table = its ask/tell steps with the table answering every ask.

:func:`run_on_table` is how every method's pure ``search`` is written: the seeds in one
ask, their rewards in one tell, then one proposal at a time in a ``lax.scan``. The
ask/tell front end (:mod:`catchjax.asktell.search`) calls the same ``ask`` and ``tell``, so a
search driven by a trainer's rewards and the table sweep are one implementation: with the
same key and the table's rewards they make the same proposals.
"""

from __future__ import annotations

import jax

from catchjax.core import Stepper, run_on_table

__all__ = ["Stepper", "record_only", "run_on_table", "take_planned"]


def take_planned(state, plan, k: int):
    """The next ``k`` rows of a plan drawn at ``start`` (random search's order, a greedy
    episode, seeds, an initial population), recorded in the state's ledger."""
    rows = jax.lax.dynamic_slice(plan, (state.ledger.n_asked,), (k,))
    return rows, state.replace(ledger=state.ledger.asked(rows))


def record_only(config, state, task, ids, rewards, seeding: bool):
    """``tell`` of a method whose proposals do not depend on rewards: record them."""
    return state.replace(ledger=state.ledger.told(ids, rewards)), {}
