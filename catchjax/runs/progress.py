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
from catchjax.store import provenance


def fingerprint(method: str, config, task: Task, seed, trials, chunk, agent,
                computed_on: dict | None = None) -> dict:
    """What must match for saved progress to belong to this sweep, including what
    computes it (another XLA flag or jax version may give other bits)."""
    import hashlib

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(agent):
        digest.update(np.asarray(leaf).tobytes())
    return {
        "method": method,
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "task": _spec_record(task),
        "table": task.table.source,
        "seed": int(seed),
        "trials": int(trials),
        "chunk": int(chunk),
        "agent_sha256": digest.hexdigest() if agent is not None else None,
        # another catchjax or JAX may draw other random numbers: never mix their chunks
        "code": code_versions(),
        # XLA flags, compiler options, platform: another value may give other bits. The
        # device and process counts and the host CPU are not here: random search, REA and
        # REINFORCE give the same bits on any (a run may resume with more devices, or on
        # another machine); see device_note.
        "computed_on": {k: v for k, v in (computed_on or provenance.computed_on()).items()
                        if k not in DEVICE_COUNTS},
    }


def _spec_record(task: Task) -> dict:
    """The task's spec as JSON; a task with one objective records it as before
    objectives existed, so that progress saved then still resumes."""
    spec = json.loads(json.dumps(dataclasses.asdict(task.spec), default=str))
    if not spec.get("objectives"):
        spec.pop("objectives", None)
    return spec


DEVICE_COUNTS = ("device_count", "process_count", "host_cpu")


def device_counts(computed_on: dict) -> dict:
    """Where a run computes, kept beside its fingerprint: device and process counts and,
    on the CPU, the host CPU (absent from records of older catchjax and of accelerators)."""
    return {k: computed_on[k] for k in DEVICE_COUNTS if k in computed_on}


def code_versions() -> dict:
    v = provenance.versions()
    return {k: v[k] for k in ("catchjax", "jax", "jaxlib")}


class SweepProgress:
    """Finished chunks of one sweep, each written once, as it finishes.

    ``sweep.json`` records the sweep's fingerprint, so progress of another sweep is never
    mixed in; ``chunks/NNNNNN.npz`` holds the trace (rows, rewards, per-epoch metrics) of
    chunk N, written through a temporary file and a rename, so a kill leaves whole chunks
    only. (Rewriting every finished row at each chunk, as an Orbax step per chunk did, made
    small chunks quadratic: ``benchmarks/safety_overhead.py``.)
    """

    def __init__(self, directory, fingerprint: dict, counts: dict | None = None):
        """``counts``: the device and process counts of this run, kept beside the
        fingerprint (not matched): :meth:`device_note` compares them."""
        self.directory = Path(directory).absolute()
        self.counts, self.counts_then = counts, counts
        self.chunks = self.directory / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        meta = self.directory / "sweep.json"
        if meta.exists():
            try:
                saved = json.loads(meta.read_text())
            except (ValueError, UnicodeDecodeError):
                saved = None
            if isinstance(saved, dict):
                self.counts_then = saved.pop("device_counts", None)
            if saved != fingerprint:
                diff = (provenance.differences(saved, fingerprint)
                        if isinstance(saved, dict) else ["its sweep.json, which is damaged"])
                raise CatchjaxError(
                    f"{self.directory} holds progress of a different sweep (differs in "
                    f"{'; '.join(diff[:6])}{f'; and {len(diff) - 6} more' if len(diff) > 6 else ''}"
                    f"); remove that folder or choose another output"
                )
        else:
            record = {**fingerprint, **({"device_counts": counts} if counts else {})}
            safe_io.atomic_write_bytes(meta, json.dumps(record, indent=2).encode())

    def device_note(self, restored: int) -> str | None:
        """A note when ``restored`` chunks were computed on other device or process counts
        than this run's, or on another host CPU: bit-identical for random search, REA and
        REINFORCE, but CATCH and the DQN may compute in other bits there (docs/usage.md)."""
        if not restored or not self.counts or not self.counts_then:
            return None
        then, now = self.counts_then, self.counts
        what = []
        if any(then.get(k) != now.get(k) for k in ("device_count", "process_count")):
            what.append(f"on {then.get('device_count')} devices in "
                        f"{then.get('process_count')} processes; this run has "
                        f"{now.get('device_count')} in {now.get('process_count')}")
        cpu_then, cpu_now = then.get("host_cpu"), now.get("host_cpu")
        if cpu_then and cpu_now and cpu_then != cpu_now:  # older records have none
            what.append(f"on another CPU ({provenance.describe_cpu(cpu_then)}; this one: "
                        f"{provenance.describe_cpu(cpu_now)})")
        if not what:
            return None
        return (f"note: resuming {restored} finished chunks computed {' and '.join(what)}. "
                f"Random search, REA and REINFORCE give the same bits there; CATCH's and the "
                f"DQN's trials may differ in their last bits from an uninterrupted run")

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
