"""Resumable sweeps: finished chunks saved as they finish, matched by a fingerprint."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import jax
import numpy as np

from catchjax import safe_io
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
        # another catchjax or JAX may draw other random numbers: never mix their chunks
        "code": code_versions(),
    }


def code_versions() -> dict:
    from catchjax.runs.results import versions

    v = versions()
    return {k: v[k] for k in ("catchjax", "jax", "jaxlib")}


class SweepProgress:
    """Finished chunks of one sweep, each written once, as it finishes.

    ``sweep.json`` records the sweep's fingerprint, so progress of another sweep is never
    mixed in; ``chunks/NNNNNN.npz`` holds the trace (rows, rewards, per-epoch metrics) of
    chunk N, written through a temporary file and a rename, so a kill leaves whole chunks
    only. (Rewriting every finished row at each chunk, as an Orbax step per chunk did, made
    small chunks quadratic: ``benchmarks/safety_overhead.py``.)
    """

    def __init__(self, directory, fingerprint: dict):
        self.directory = Path(directory).absolute()
        self.chunks = self.directory / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        meta = self.directory / "sweep.json"
        if meta.exists():
            try:
                saved = json.loads(meta.read_text())
            except (ValueError, UnicodeDecodeError):
                saved = None
            if saved != fingerprint:
                diff = (sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
                        if isinstance(saved, dict) else ["its sweep.json, which is damaged"])
                raise CatchjaxError(
                    f"{self.directory} holds progress of a different sweep (differs in "
                    f"{', '.join(diff)}); remove that folder or choose another output"
                )
        else:
            safe_io.atomic_write_bytes(meta, json.dumps(fingerprint, indent=2).encode())

    def _path(self, c: int) -> Path:
        return self.chunks / f"{c:06d}.npz"

    def restore(self) -> list[SearchTrace]:
        """The traces of the finished chunks 0, 1, ... (stops at the first missing one)."""
        out = []
        while self._path(len(out)).exists():
            path = self._path(len(out))
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in data.files}
                metrics = {k[len("metrics/"):]: v for k, v in arrays.items()
                           if k.startswith("metrics/")}
                out.append(SearchTrace(arrays["rows"], arrays["rewards"], metrics))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                raise CatchjaxError(
                    f"cannot read sweep progress {path} ({type(exc).__name__}); remove "
                    f"{self.directory} to start the sweep over"
                ) from None
        return out

    def save(self, c: int, trace: SearchTrace) -> None:
        """Write chunk ``c`` (host arrays)."""
        buf = io.BytesIO()
        np.savez(buf, rows=trace.rows, rewards=trace.rewards,
                 **{f"metrics/{k}": v for k, v in trace.metrics.items()})
        safe_io.atomic_write_bytes(self._path(c), buf.getvalue())

    def close(self):
        pass
