"""The edit-based, transferable NAS agent (paper 002, SPEC §4): a DQN that edits one
decision of an architecture at a time.

* :mod:`catchjax.methods.dqn.env` — the edit environment (gymnax-style pure reset/step);
* :mod:`catchjax.methods.dqn.network` — the transformer Q-network with dueling heads;
* :mod:`catchjax.methods.dqn.returns` — n-step returns with partial-episode bootstrapping;
* :mod:`catchjax.methods.dqn.learner` — config, the Anakin training loop, evaluation, search.
"""

from catchjax.methods.dqn.learner import (
    DQNAgent,
    DQNConfig,
    dqn_search,
    evaluate,
    init_agent,
    train,
)

__all__ = ["DQNAgent", "DQNConfig", "dqn_search", "evaluate", "init_agent", "train"]
