"""Resumable sweeps: finished chunks checkpointed with Orbax, matched by a fingerprint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from catchjax.benchmarks.tasks import Task
from catchjax.core import SearchTrace
from catchjax.errors import CatchjaxError


def fingerprint(method: str, config, task: Task, seed, trials, chunk, agent) -> dict:
    """What must match for saved progress to belong to this sweep."""
    import hashlib

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(agent):
        digest.update(np.asarray(leaf).tobytes())
    return {
        "method": method,
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "task": json.loads(json.dumps(dataclasses.asdict(task.spec), default=str)),
        "table": task.table.source,
        "seed": int(seed),
        "trials": int(trials),
        "chunk": int(chunk),
        "agent_sha256": digest.hexdigest() if agent is not None else None,
    }


class SweepProgress:
    """Finished chunks of one sweep, checkpointed with an Orbax CheckpointManager.

    Step k holds the traces (rows, rewards, metrics) of the first k chunks; only the latest
    is kept.
    ``sweep.json`` records the sweep's fingerprint, so progress of another sweep is never
    mixed in.
    """

    def __init__(self, directory, fingerprint: dict):
        import orbax.checkpoint as ocp

        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = self.directory / "sweep.json"
        if meta.exists():
            saved = json.loads(meta.read_text())
            if saved != fingerprint:
                diff = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
                raise CatchjaxError(
                    f"{self.directory} holds progress of a different sweep (differs in "
                    f"{', '.join(diff)}); remove that folder or choose another output"
                )
        else:
            meta.write_text(json.dumps(fingerprint, indent=2))
        self._ocp = ocp
        self.manager = ocp.CheckpointManager(
            self.directory / "chunks", options=ocp.CheckpointManagerOptions(max_to_keep=1)
        )

    def restore(self) -> list:
        """The traces of the finished chunks, in order (empty if none)."""
        step = self.manager.latest_step()
        if step is None:
            return []
        try:
            state = self.manager.restore(step, args=self._ocp.args.StandardRestore())
        except Exception as exc:  # a damaged step: start over rather than guess
            raise CatchjaxError(
                f"cannot read sweep progress in {self.directory} ({type(exc).__name__}); "
                f"remove the folder to start the sweep over"
            ) from None
        sizes = np.asarray(state["sizes"])
        bounds = np.cumsum(sizes)[:-1]
        rows = np.split(np.asarray(state["rows"]), bounds)
        rewards = np.split(np.asarray(state["rewards"]), bounds)
        metrics = {k: np.split(np.asarray(v), bounds) for k, v in state.get("metrics", {}).items()}
        return [SearchTrace(rows[c], rewards[c], {k: v[c] for k, v in metrics.items()})
                for c in range(len(sizes))]

    def save(self, chunks: list[SearchTrace]):
        """Checkpoint the traces of all finished chunks (host arrays), in order."""
        state = {
            "rows": np.concatenate([c.rows for c in chunks]),
            "rewards": np.concatenate([c.rewards for c in chunks]),
            "sizes": np.asarray([len(c.rows) for c in chunks], np.int32),
        }
        if chunks[0].metrics:
            state["metrics"] = {k: np.concatenate([c.metrics[k] for c in chunks])
                                for k in chunks[0].metrics}
        self.manager.save(len(chunks), args=self._ocp.args.StandardSave(state))
        self.manager.wait_until_finished()

    def close(self):
        self.manager.close()
