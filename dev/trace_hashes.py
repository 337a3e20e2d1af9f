"""SHA-256 of what every method computes, for checking that a restructuring keeps
behaviour bit for bit: run it before and after and compare the two outputs.

Sweeps of every method on synthetic tables (random, rea, reinforce, the catch family
incl. a tiny meta-training, the DQN's training and greedy sweep), a transfer study's
arrays, and an ask/tell search driven by the table. Prints one ``name hash`` line each.

    python dev/trace_hashes.py > before.txt     # then change the code, then:
    python dev/trace_hashes.py | diff before.txt -
"""

from __future__ import annotations

import hashlib
import sys
import tempfile

import jax
import numpy as np


def digest(tree) -> str:
    if hasattr(tree, "rows") and hasattr(tree, "rewards"):  # a SweepResult
        tree = (tree.rows, tree.rewards, tree.metrics)
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        x = jax.numpy.asarray(leaf)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        h.update(np.ascontiguousarray(np.asarray(x)).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    from catchjax import make_task, methods, sweep
    from catchjax.asktell.search import AskTell, task_domain
    from catchjax.runs import agent as agents
    from catchjax.studies import transfer

    nb = make_task("synthetic-nb201", "cifar10")
    micro = make_task("synthetic-transnas-micro", "jigsaw")
    small = dict(candidates=12, hidden=16, updates_per_epoch=2)
    out = {}
    tiny_bananas = dict(ensemble=2, layers=1, width=8, train_steps=10, candidates=12)
    for m, kw in (("random", {}), ("rea", {}), ("reinforce", {}), ("catch-sfs", small),
                  ("catch-sfs-zero", small), ("ls", {}), ("bananas", tiny_bananas)):
        out[f"sweep {m}"] = digest(sweep(m, nb, trials=6, budget=12, seed=1, **kw))
    for m in ("catch-meta", "catch-zero", "catch-random"):
        config = methods.make_config(m, 12, meta_epochs=3, meta_budget=8, **small)
        trained = agents.train(m, nb, config, seed=2)
        out[f"train {m}"] = digest(trained.agent)
        out[f"sweep {m}"] = digest(sweep(config, nb, trials=4, budget=12, seed=1,
                                         agent=trained.agent))
    config = methods.make_config("dqn", 11, total_steps=512, n_envs=16, batch_size=16,
                                 width=16, heads=2, layers=1, learning_starts=32,
                                 buffer_capacity=256, target_period=128)
    dqn = agents.train("dqn", micro, config, seed=0)
    out["train dqn"] = digest(dqn.agent)
    out["sweep dqn"] = digest(sweep(config, micro, trials=8, budget=11, seed=0,
                                    agent=dqn.agent))
    many = agents.train_many("catch-meta", nb, methods.make_config(
        "catch-meta", 12, meta_epochs=2, meta_budget=8, **small), seeds=(0, 1))
    out["train_many catch-meta"] = digest([a.agent for a in many])
    search = AskTell.start("rea", task_domain(micro), budget=10, seed=3, population=4)
    reward = np.asarray(micro.arrays.reward)
    while proposals := search.ask(2):
        rows = [int(micro.arrays.code_to_row[int(micro.space.encode(np.asarray(p["actions"])))])
                for p in proposals]
        search.tell([p["id"] for p in proposals], [float(reward[r]) for r in rows])
    out["ask/tell rea"] = digest(search.state)
    spec = transfer.StudySpec("dqn", "synthetic-transnas-micro", ("class_object", "room_layout"),
                              640, (0, 1), 0.5, (), eval_points=4, eval_episodes=8)
    tiny = methods.make_config("dqn", 11, n_envs=32, batch_size=32, width=16, heads=2,
                               layers=1, learning_starts=32, buffer_capacity=512,
                               target_period=256)
    with tempfile.TemporaryDirectory() as tmp:
        study = transfer.run_study(spec, tiny, f"{tmp}/s", log=lambda *_: None)
        out["transfer cells"] = hashlib.sha256(repr(study["cells"]).encode()).hexdigest()[:16]
    for k, v in out.items():
        print(f"{k:24s} {v}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
