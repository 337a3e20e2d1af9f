"""Checkpoints of trained agents, for any method with a learner.

A checkpoint is a folder: ``state/`` (the Orbax PyTree checkpoint of the agent's state)
and ``catchjax.json``, the manifest: the method, its config, the benchmark and search
space, the target and training tasks, the seed and key data, versions, a SHA-256 of
every file under ``state/`` and one of the manifest itself. The manifest is written
last, so a folder without it is a checkpoint whose writing did not finish. Loading
checks all of it before restoring.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax
import numpy as np

from catchjax import methods, safe_io
from catchjax.benchmarks import tables
from catchjax.benchmarks.tasks import target_columns
from catchjax.core import TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.store import folder, provenance

FORMAT = 2
MANIFEST = "catchjax.json"


AGENT_FILES = {MANIFEST, "state"}


def check_agent_dir(path, overwrite: bool) -> Path:
    """Refuse a checkpoint folder that may not be written (before any training): one that
    exists without ``overwrite``, and with it anything but a checkpoint catchjax wrote."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CatchjaxError(f"checkpoint {path} already exists; pass overwrite=True/--overwrite")
    return safe_io.check_output_dir(path, overwrite, owned=AGENT_FILES, marker=MANIFEST,
                                    what="checkpoint")


def save_agent(path, trained: TrainedAgent, overwrite: bool = False) -> Path:
    """Write a checkpoint folder (see module docstring); never half-replaces an old one,
    and replaces only a checkpoint folder catchjax wrote."""

    path = check_agent_dir(path, overwrite).absolute()
    if not isinstance(trained, TrainedAgent):
        raise CatchjaxError(f"save_agent saves a TrainedAgent (catchjax.runs.agent.train's "
                            f"result), got {type(trained).__name__}")

    def fill(tmp: Path):
        state_sha256 = folder.save_state(tmp / "state", trained.agent)
        space = trained.space or tables.benchmark_info(trained.benchmark).space.name
        meta = {
            "format": FORMAT,
            "kind": "catchjax agent",
            "method": trained.method,
            "config": dataclasses.asdict(trained.config),
            "benchmark": trained.benchmark,
            "space": space,
            "target_task": trained.target_task,
            "pool": trained.pool,
            "seed": trained.seed,
            "key_data": np.asarray(jax.random.key_data(jax.random.key(trained.seed))).tolist(),
            "n_decisions": trained.n_decisions,
            "n_choices": trained.n_choices,
            "meta_train_seconds": trained.seconds,
            "protocol": trained.protocol,
            "state_sha256": state_sha256,
            **provenance.record(),  # versions, platform, devices, flags of this process
        }
        folder.write_manifest(tmp / MANIFEST, meta, indent=2, atomic=False)

    return safe_io.write_dir(path, fill, overwrite=overwrite, owned=AGENT_FILES,
                             marker=MANIFEST, what="checkpoint")


def _warn(text: str) -> None:
    import sys

    print(f"catchjax: warning: {text}", file=sys.stderr)


def read_manifest(path) -> dict:
    """The manifest of a complete checkpoint folder, or a clear error."""
    path = Path(path).absolute()
    if not path.exists():
        raise CatchjaxError(f"checkpoint {path} does not exist")
    meta_file = path / MANIFEST
    if not meta_file.exists() or not (path / "state").is_dir():
        raise CatchjaxError(
            f"{path} is not a complete catchjax agent checkpoint (no {MANIFEST} or state/): "
            f"its writing may not have finished; train again"
        )
    meta = folder.read_json_object(meta_file)
    if "manifest_sha256" not in meta and (meta.get("format") != 1 or "state_sha256" not in meta):
        raise CatchjaxError(
            f"{meta_file} has no checksum of itself (only the first format, 1, had none and "
            f"then a checksum of state/): it was changed after it was written, and its config "
            f"or space may not be what the agent was trained with. Train again or restore a copy"
        )
    if "manifest_sha256" in meta and not folder.is_sealed(meta):
        raise CatchjaxError(
            f"{meta_file} was changed after it was written (its checksum does not match): the "
            f"config or space it names may not be what the agent was trained with. Train "
            f"again or restore a copy"
        )
    if meta.get("format") == 1:  # the first CATCH checkpoints: no method, space or checksum
        meta.setdefault("method", "catch-meta")
    elif meta.get("format") != FORMAT:
        raise CatchjaxError(f"{path}: checkpoint format {meta.get('format')}, expected {FORMAT}")
    return meta


def load_agent(path, task=None, method: str | None = None, **overrides) -> TrainedAgent:
    """Restore a checkpoint; ``overrides`` change non-shape config fields (e.g. budget).

    Raises a clear error for a missing, half-written or damaged folder, a checkpoint of
    another method than ``method``, a search space other than ``task``'s, or overrides
    that change the saved networks' shapes.
    """

    if not isinstance(path, (str, os.PathLike)) or str(path).strip() == "":
        raise CatchjaxError(f"load_agent needs the checkpoint folder's path, got {path!r}")
    path = Path(path).absolute()
    if is_agent_set(path):
        inside = sorted(p.name for p in path.iterdir() if (p / MANIFEST).is_file())
        raise CatchjaxError(
            f"{path} holds several agents ({', '.join(inside)}); this takes one: give one of "
            f"its folders, e.g. {path / (inside[0] if inside else 'seed-0')} (a sweep's --init "
            f"takes the whole folder and shares its trials among them)")
    meta = read_manifest(path)
    try:
        m = methods.get(meta["method"])
        saved = m.config(**methods.with_added_settings(m.config, meta["config"]))
        L, K = int(meta["n_decisions"]), int(meta["n_choices"])
        benchmark, target, pool = meta["benchmark"], meta["target_task"], list(meta["pool"])
    except (ValueError, TypeError, KeyError, CatchjaxError) as exc:
        raise CatchjaxError(
            f"{path / MANIFEST} is damaged or from another version: {exc}"
        ) from None
    if method is not None and methods.canonical_name(method) != m.name:
        raise CatchjaxError(
            f"checkpoint {path} holds a {m.name} agent, not one for {method}"
        )
    if m.learner is None:
        raise CatchjaxError(f"checkpoint {path}: method {m.name} has no trained agent")
    config = _config_with(path, m, saved, overrides)
    space, protocol = meta.get("space"), meta.get("protocol")
    if task is not None:
        _check_task(path, meta, task, L, K)
    if folder.state_digest(path / "state") != meta.get("state_sha256"):
        raise CatchjaxError(
            f"checkpoint {path}: the files under state/ do not match their checksum in "
            f"{MANIFEST}; the checkpoint is damaged or incompatible (changed after it was "
            f"written). Train again or restore a copy"
        )
    if "manifest_sha256" not in meta:  # the first checkpoints had no checksum of their own
        _warn(f"checkpoint {path} has no checksum of its manifest (written by an early "
              f"catchjax): its state files match their checksum, but its config, space "
              f"and pool cannot be verified. Save it again to add one")
    if task is not None and m.learner.trains_on != "task":
        seen = [c for c in pool if c in target_columns(task)]
        if seen:
            _warn(f"the agent in {path} was trained on {task.name}'s own columns "
                  f"({', '.join(seen)}): adapting it to {task.name} is not transfer")
    abstract = folder.abstract_of(m.learner.init(saved, jax.random.key(0), L, K))
    agent = folder.restore_state(path / "state", abstract,
                                 "the checkpoint is damaged or incompatible")
    return TrainedAgent(agent, config, benchmark, target, pool, meta["seed"], L, K,
                        meta.get("meta_train_seconds", 0.0), method=m.name,
                        space=space or "", protocol=protocol)


def _config_with(path: Path, m, saved, overrides: dict):
    """The saved config with ``overrides``; a checkpoint keeps what fixes its networks'
    shapes and how it was trained, so overrides of those are refused."""
    fields = {f.name for f in dataclasses.fields(m.config)}
    unknown = set(overrides) - fields
    if unknown:
        raise CatchjaxError(f"{m.name} has no setting {', '.join(sorted(unknown))}")
    config = methods.restore(m.name, {**dataclasses.asdict(saved), **overrides})
    for fields, why in ((m.learner.shape_fields, "an incompatible config. Use the "
                         "checkpoint's values or train anew"),
                        (m.learner.trained_fields, "a checkpoint keeps how it was trained. "
                         "Train an agent with those settings instead")):
        clash = {k: (getattr(saved, k), getattr(config, k)) for k in fields
                 if getattr(config, k) != getattr(saved, k)}
        if clash:
            raise CatchjaxError(
                f"checkpoint {path} was trained with "
                + ", ".join(f"{k}={a!r}" for k, (a, _) in clash.items())
                + "; the requested config has "
                + ", ".join(f"{k}={b!r}" for k, (_, b) in clash.items()) + f": {why}")
    return config


def _check_task(path: Path, meta: dict, task, L: int, K: int) -> None:
    """Refuse a task the agent was not trained for: another protocol of its benchmark,
    another number of decisions or choices, another search space."""
    space, protocol = meta.get("space"), meta.get("protocol")
    benchmark, target = meta["benchmark"], meta["target_task"]
    asked = tables.benchmark_info(task.spec.benchmark).protocol_name(task.spec.protocol)
    if (protocol is not None and asked is not None and asked != protocol
            and task.spec.benchmark == benchmark):
        raise CatchjaxError(
            f"checkpoint {path} was trained for {benchmark}/{target} under the "
            f"{protocol!r} protocol, but the task is under {asked!r} (another reward and "
            f"report): train an agent for {asked!r}, or use --protocol {protocol}")
    tl, _, tk = task.arrays.prefix_mask.shape
    if (tl, tk) != (L, K):
        raise CatchjaxError(
            f"checkpoint {path} is for a {L} x {K} search space, but {task.name} is "
            f"{tl} x {tk}: an incompatible config"
        )
    if space is not None and space != task.space.name:
        raise CatchjaxError(
            f"checkpoint {path} was trained on the {space} space ({benchmark}), but "
            f"{task.name} is in the {task.space.name} space: its decisions mean other "
            f"things there; train an agent on {task.spec.benchmark}"
        )


# -- several agents of one method in one folder ------------------------------------------

SET_MANIFEST = "catchjax-agents.json"


def agent_folder_name(trained: TrainedAgent) -> str:
    return f"seed-{trained.seed}"


def save_agents(path, trained: list, overwrite: bool = False) -> Path:
    """Write several trained agents of one method (e.g. ``train_many``'s) as one folder:
    each a checkpoint in ``seed-S/`` (:func:`save_agent`) and, written last, a manifest
    ``catchjax-agents.json`` listing them in order. One agent is saved as a plain
    checkpoint. :func:`load_agents` reads either."""
    trained = list(trained)
    if not trained or not all(isinstance(t, TrainedAgent) for t in trained):
        raise CatchjaxError("save_agents saves a non-empty list of TrainedAgents")
    if len(trained) == 1:
        return save_agent(path, trained[0], overwrite=overwrite)
    names = [agent_folder_name(t) for t in trained]
    if len(set(names)) != len(names):
        raise CatchjaxError(f"agents with the same seed cannot share a folder: {names}")
    if len({(t.method, t.benchmark, t.target_task, t.space) for t in trained}) > 1:
        raise CatchjaxError("the agents of one folder must be of one method, benchmark and "
                            "target")
    path = check_agent_dir(path, overwrite).absolute()

    def fill(tmp: Path):
        for t, name in zip(trained, names):
            save_agent(tmp / name, t)
        meta = {"format": 1, "kind": "catchjax agents", "method": trained[0].method,
                "benchmark": trained[0].benchmark, "target_task": trained[0].target_task,
                "protocol": trained[0].protocol, "agents": names,
                "seeds": [t.seed for t in trained],
                "manifests_sha256": [folder.read_json_object(tmp / n / MANIFEST)[folder.DIGEST]
                                     for n in names]}
        folder.write_manifest(tmp / SET_MANIFEST, meta, indent=2, atomic=False)

    return safe_io.write_dir(path, fill, overwrite=overwrite,
                             owned=AGENT_FILES | {SET_MANIFEST, *names},
                             marker=SET_MANIFEST, what="checkpoint")


RUN_AGENTS = "meta-agent"  # a sweep's own trained agents, inside its results folder


def stage_run_agents(out, trained: list) -> Path:
    """Save the agents a sweep trains for itself (``sweep`` without ``--init``) beside its
    results folder ``out``, hidden, while its trials run: a sweep that fails leaves
    ``out`` as it was. :func:`attach_run_agents` moves them in once the results are
    written."""
    out = Path(out)
    return save_agents(out.parent / f".{out.name}.{RUN_AGENTS}", trained, overwrite=True)


def attach_run_agents(staged: Path, out) -> Path:
    """Move agents :func:`stage_run_agents` saved into the finished run ``out`` as
    ``meta-agent/``, recorded as the run's own files (so ``--overwrite`` may replace
    them and nothing else); where they are now."""
    target = Path(out) / RUN_AGENTS
    os.replace(staged, target)
    safe_io.write_record(out, "results")  # the agent is the run's too
    return target


def is_agent_set(path) -> bool:
    return (Path(path) / SET_MANIFEST).is_file()


def load_agents(path, task=None, method: str | None = None, **overrides) -> list:
    """The agents of a folder :func:`save_agents` wrote (in its order), or ``[agent]`` of
    a plain checkpoint; each checked as :func:`load_agent` checks one."""
    if not isinstance(path, (str, os.PathLike)) or str(path).strip() == "":
        raise CatchjaxError(f"load_agents needs the checkpoint folder's path, got {path!r}")
    path = Path(path).absolute()
    if not is_agent_set(path):
        return [load_agent(path, task, method, **overrides)]
    meta = folder.read_json_object(path / SET_MANIFEST)
    if not folder.is_sealed(meta):
        raise CatchjaxError(f"{path / SET_MANIFEST} was changed after it was written (its "
                            f"checksum does not match). Train again or restore a copy")
    names = meta.get("agents")
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and "/" not in n and n not in ("", ".", "..") for n in names):
        raise CatchjaxError(f"{path / SET_MANIFEST} is damaged: it lists no agent folders")
    out = []
    for name, digest in zip(names, meta.get("manifests_sha256", [None] * len(names))):
        one = path / name
        if digest is not None and (one / MANIFEST).is_file() and folder.manifest_digest(
                folder.read_json_object(one / MANIFEST)) != digest:
            raise CatchjaxError(f"{one} is not the agent {path / SET_MANIFEST} lists (its "
                                f"manifest changed); restore a copy or train again")
        out.append(load_agent(one, task, method, **overrides))
    return out
