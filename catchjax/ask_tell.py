"""Ask/tell: a search whose rewards come from outside (a trainer, a cluster job).

``search = AskTell.start(method, domain, ...)``; ``search.ask(k)`` proposes up to k
architectures to evaluate in parallel; ``search.tell(ids, rewards)`` hands their rewards
back. Both run the method's own jitted steps (:class:`catchjax.core.Stepper`), the very
functions its table search is made of, so with the table's rewards an ask/tell search
makes exactly the table sweep's proposals (``tests/test_ask_tell.py``).

A search saved to a folder (``state_dir``) is written after every ask and every tell:
``state/`` (the Orbax checkpoint of the state pytree) and ``catchjax-search.json`` (the
method, config, domain, seed, every proposal with its reward, checksums). The folder is
replaced as a whole (:func:`catchjax.safe_io.write_dir`), so a crash leaves the last
complete state; :meth:`AskTell.load` continues it exactly. The command line
(``catchjax ask`` / ``catchjax tell``) speaks JSON and CSV files, so a job in any
language can drive a search.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import checkpoints, methods, safe_io
from catchjax.benchmarks import spaces
from catchjax.benchmarks.tasks import Task, TaskArrays, make_task
from catchjax.errors import CatchjaxError

FORMAT = 1
MANIFEST = "catchjax-search.json"
OWNED = {MANIFEST, "state"}


# -- what a search proposes from --------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
    """The architectures an ask/tell search proposes from: a space's rows with their
    masks and neighbours, and no rewards (``arrays.reward`` is NaN: the steps never
    read it)."""

    name: str  # a space name ("nb201", "residual", ...) or "table:BENCHMARK/TASK"
    space: spaces.SearchSpace
    arrays: TaskArrays
    actions: np.ndarray  # i32 [n, L], row -> decisions

    @functools.cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.actions.tobytes()).hexdigest()[:16]

    def describe(self, row: int) -> dict:
        actions = self.actions[row]
        out = {"arch": self.space.to_str(actions), "actions": [int(a) for a in actions]}
        if self.space.name == "residual":
            from catchjax.residual import decode

            out["spec"] = decode(actions).describe()
        return out


def _arrays(space: spaces.SearchSpace, actions: np.ndarray) -> TaskArrays:
    code_to_row = np.full(space.n_codes, -1, np.int32)
    code_to_row[space.encode(actions)] = np.arange(len(actions), dtype=np.int32)
    n = len(actions)
    return TaskArrays(
        reward=jnp.full((n,), jnp.nan), report=jnp.zeros((n, 1)),
        code_to_row=jnp.asarray(code_to_row), row_actions=jnp.asarray(actions, jnp.int32),
        prefix_mask=jnp.asarray(spaces.prefix_masks(space, actions)),
        neighbors=jnp.asarray(spaces.neighbour_table(space, actions, code_to_row)),
        valid_rows=jnp.arange(n, dtype=jnp.int32))


@functools.cache
def space_domain(name: str) -> Domain:
    """Every architecture of a space (``nb201``, ``transnas-micro``, ``transnas-macro``,
    ``residual``), no table needed."""
    if name == "residual":
        from catchjax.residual import RESIDUAL as space
    elif name in spaces.SPACES:
        space = spaces.SPACES[name]
    else:
        raise CatchjaxError(
            f"unknown search space {name!r}; spaces: {', '.join([*spaces.SPACES, 'residual'])}"
        )
    actions = space.enumerate().astype(np.int32)
    return Domain(name, space, _arrays(space, actions), actions)


def task_domain(task: Task) -> Domain:
    """The searchable architectures of a table task (rows as in the table), for driving
    a search with rewards from outside over exactly the rows a table sweep searches."""
    arrays = task.arrays.replace(reward=jnp.full(task.arrays.reward.shape, jnp.nan))
    return Domain(f"table:{task.spec.benchmark}/{task.spec.task}", task.space, arrays,
                  np.asarray(task.table.actions, np.int32))


def domain_by_name(name: str) -> Domain:
    if name.startswith("table:"):
        bench, _, task = name[len("table:"):].partition("/")
        return task_domain(make_task(bench, task))
    return space_domain(name)


# -- the search ---------------------------------------------------------------------------


@functools.cache
def _jitted(stepper):
    return (jax.jit(stepper.ask, static_argnums=(0, 3, 4)),
            jax.jit(stepper.tell, static_argnums=(0, 5)))


def _finite_reward(value, what: str) -> float:
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise CatchjaxError(f"{what}: the reward {value!r} is not a number") from None
    if not math.isfinite(r):
        raise CatchjaxError(
            f"{what}: the reward is {value!r}; rewards must be finite. Report a failed "
            f"training run as a finite low reward (e.g. 0) rather than NaN or inf"
        )
    return r


def _as_asked(proposal: dict) -> dict:
    """A logged proposal as :meth:`AskTell.ask` hands it out (no reward, no timestamp)."""
    return {k: v for k, v in proposal.items() if k not in ("reward", "asked_at")}


@dataclasses.dataclass
class AskTell:
    """A search driven from outside. Host object around the method's state pytree."""

    method: str
    config: object
    domain: Domain
    seed: int
    state: object
    log: list  # one dict per proposal: id, arch, actions, reward, extras, times
    state_dir: Path | None = None
    agent_source: dict | None = None  # the checkpoint a trained agent came from
    trial: int = 0

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def start(cls, method: str, domain: Domain | str, *, budget: int = 50, seed: int = 0,
              trial: int = 0, agent=None, state_dir=None, **settings) -> AskTell:
        """A new search. ``agent``: a :class:`~catchjax.core.TrainedAgent` (meta-trained
        CATCH, trained DQN) or a checkpoint path; its config is kept, ``budget`` and
        ``settings`` override the rest. ``state_dir``: save the search there (it must not
        exist yet). The key is a sweep's: ``seed`` and ``trial`` give trial ``trial`` of
        ``catchjax.sweep(..., seed=seed)``."""
        from catchjax.sweeps import check_seed, trial_key

        domain = domain_by_name(domain) if isinstance(domain, str) else domain
        name = methods.canonical_name(method)
        m = methods.get(name)
        if m.stepper is None:
            raise CatchjaxError(f"method {name!r} has no ask/tell steps")
        check_seed(seed)
        source = None
        if isinstance(agent, (str, Path)):
            source = {"path": str(Path(agent).absolute()),
                      "manifest_sha256": checkpoints.read_manifest(agent).get("manifest_sha256")}
            agent = checkpoints.load_agent(agent, method=name, budget=budget, **settings)
        if agent is not None:
            if agent.method != name:
                raise CatchjaxError(f"the agent is a {agent.method} agent, not one for {name}")
            L, K = domain.space.n_decisions, domain.space.n_choices
            if (agent.n_decisions, agent.n_choices) != (L, K) or (
                    agent.space and agent.space != domain.space.name):
                raise CatchjaxError(
                    f"the agent was trained on the {agent.space or '?'} space "
                    f"({agent.n_decisions} x {agent.n_choices}), the search is over "
                    f"{domain.name} ({L} x {K}): its decisions mean other things there"
                )
            config = methods.make_config(name, budget, **{
                **{k: v for k, v in dataclasses.asdict(agent.config).items() if k != "budget"},
                **settings})
            params = agent.agent
        else:
            config = methods.make_config(name, budget, **settings)
            params = None
            if m.learner is not None and m.learner.requires_agent:
                raise CatchjaxError(
                    f"{name} starts from a trained agent: pass agent= (a checkpoint path or "
                    f"catchjax.agent.train's result), or --init CHECKPOINT, trained on the "
                    f"{domain.space.name} space (e.g. `catchjax train --method {name} "
                    f"--benchmark ...`); or search from scratch (catch-sfs)"
                )
        fake_task = _TaskView(domain)
        methods.validate(config, fake_task, params)
        if state_dir is not None:
            state_dir = Path(state_dir).absolute()
            if state_dir.exists():
                raise CatchjaxError(
                    f"{state_dir} already exists; continue that search with AskTell.load / "
                    f"`catchjax ask --state {state_dir}` (without --method), or pick a new folder"
                )
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            raise CatchjaxError(f"trial must be an integer >= 0, got {trial!r}")
        state = jax.jit(m.stepper.start, static_argnums=0)(config, trial_key(seed, trial),
                                                            domain.arrays, params)
        search = cls(name, config, domain, seed, state, [], state_dir, source, trial)
        if state_dir is not None:
            search.save()
        return search

    # -- steps ---------------------------------------------------------------------------
    @property
    def stepper(self):
        return methods.get(self.method).stepper

    @property
    def n_asked(self) -> int:
        return len(self.log)

    @property
    def pending(self) -> list[int]:
        return [p["id"] for p in self.log if p["reward"] is None]

    def pending_proposals(self) -> list[dict]:
        """The proposals still waiting for a reward, as :meth:`ask` returned them (to hand
        them out again after the job training them crashed)."""
        return [_as_asked(p) for p in self.log if p["reward"] is None]

    def ready(self) -> int:
        """How many proposals :meth:`ask` can make now."""
        return int(self.stepper.ready(self.config, self.state))

    def why_not_more(self) -> str:
        if self.n_asked >= self.config.budget:
            return f"the search's budget of {self.config.budget} evaluations is spent"
        if self.ready() == 0 and self.pending:
            return (f"the method needs the rewards of proposals {self.pending} before it "
                    f"proposes more")
        if self.ready() == 0:
            return "the search has ended (the agent stopped)"
        return ""

    def ask(self, k: int = 1) -> list[dict]:
        """Up to ``k`` new proposals (fewer when the method must first hear rewards or the
        budget is spent: :meth:`why_not_more` says which), each ``{"id", "arch",
        "actions"}`` (+ ``"spec"`` in the residual space). Saved before it returns."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise CatchjaxError(f"k (how many proposals) must be an integer >= 1, got {k!r}")
        n = min(k, self.ready())
        if n == 0:
            return []
        seeding = self.n_asked < self.stepper.first(self.config)
        if seeding:
            n = min(n, self.stepper.first(self.config) - self.n_asked)
        ask, _ = _jitted(self.stepper)
        rows, state, _ = ask(self.config, self.state, self.domain.arrays, n, seeding)
        now = time.time()
        new = [{"id": self.n_asked + j, **self.domain.describe(int(r)), "reward": None,
                "asked_at": now} for j, r in enumerate(np.asarray(rows))]
        if self.state_dir is not None:  # on disk first: an error leaves both unchanged
            self._write(state, self.log + new)
        self.state, self.log = state, self.log + new
        return [_as_asked(p) for p in new]

    def resolve(self, ids=None, archs=None) -> list[int]:
        """Proposal ids for a tell: ``ids`` as given (checked), or matched from ``archs``
        (the oldest pending proposal of that arch)."""
        if ids is None and archs is None:
            raise CatchjaxError("tell needs the proposal ids or their arch strings")
        if ids is not None:
            try:
                ids = [int(i) for i in ids]
            except (TypeError, ValueError):
                raise CatchjaxError(f"proposal ids must be integers, got {ids!r}") from None
            if archs is not None:
                if len(archs) != len(ids):
                    raise CatchjaxError(f"{len(ids)} ids but {len(archs)} archs")
                for i, arch in zip(ids, archs):
                    if 0 <= i < self.n_asked and arch and arch != self.log[i]["arch"]:
                        raise CatchjaxError(
                            f"the result for proposal {i} names arch {arch!r}, but proposal "
                            f"{i} is {self.log[i]['arch']!r}"
                        )
            return ids
        out, taken = [], set()
        for arch in archs:
            match = [p["id"] for p in self.log if p["arch"] == arch and p["reward"] is None
                     and p["id"] not in taken]
            if not match:
                told = [p["id"] for p in self.log if p["arch"] == arch]
                raise CatchjaxError(
                    f"arch {arch!r} was never asked" if not told else
                    f"arch {arch!r} (proposal {told}) was told already; a repeated tell is "
                    f"refused"
                )
            out.append(match[0])
            taken.add(match[0])
        return out

    def tell(self, ids=None, rewards=(), *, archs=None, extras=None) -> None:
        """The rewards of proposals ``ids`` (or of the pending proposals named by
        ``archs``), learned in the order given. ``extras``: optional dicts saved with each
        result (e.g. accuracy, latency). Everything is checked before the state changes;
        nothing is saved on an error."""
        ids = self.resolve(ids, archs)
        rewards = list(rewards)
        if len(rewards) != len(ids):
            raise CatchjaxError(f"{len(ids)} proposals but {len(rewards)} rewards")
        if not ids:
            raise CatchjaxError("tell needs at least one result")
        if len(set(ids)) != len(ids):
            raise CatchjaxError(f"a proposal appears twice in one tell: {ids}")
        values = []
        for i, r in zip(ids, rewards):
            if not 0 <= i < self.n_asked:
                raise CatchjaxError(
                    f"proposal {i} was never asked (asked: "
                    f"{'0..' + str(self.n_asked - 1) if self.n_asked else 'none yet'})"
                )
            if self.log[i]["reward"] is not None:
                raise CatchjaxError(
                    f"proposal {i} ({self.log[i]['arch']}) was told already (reward "
                    f"{self.log[i]['reward']}); a repeated tell is refused"
                )
            values.append(_finite_reward(r, f"proposal {i}"))
        _, tell = _jitted(self.stepper)
        first = self.stepper.first(self.config)
        state, start = self.state, 0
        while start < len(ids):  # runs of seeds / non-seeds, in the order given
            seeding = ids[start] < first
            end = start
            while end < len(ids) and (ids[end] < first) == seeding:
                end += 1
            state, _ = tell(self.config, state, self.domain.arrays,
                            jnp.asarray(ids[start:end], jnp.int32),
                            jnp.asarray(values[start:end], jnp.float32), seeding)
            start = end
        now = time.time()
        log = [dict(p) for p in self.log]
        for n, (i, r) in enumerate(zip(ids, values)):
            log[i].update(reward=r, told_at=now)
            if extras is not None and extras[n]:
                log[i]["extras"] = dict(extras[n])
        if self.state_dir is not None:
            self._write(state, log)
        self.state, self.log = state, log

    def best(self) -> dict | None:
        told = [p for p in self.log if p["reward"] is not None]
        return max(told, key=lambda p: p["reward"]) if told else None

    # -- persistence ---------------------------------------------------------------------
    def save(self) -> None:
        self._write(self.state, self.log)

    def _manifest(self, log) -> dict:
        import catchjax

        return {
            "format": FORMAT, "kind": "catchjax ask/tell search", "method": self.method,
            "config": dataclasses.asdict(self.config), "domain": self.domain.name,
            "space": self.domain.space.name, "domain_fingerprint": self.domain.fingerprint,
            "seed": self.seed, "trial": self.trial, "agent": self.agent_source,
            "budget": self.config.budget,
            "n_asked": len(log), "n_told": sum(p["reward"] is not None for p in log),
            "proposals": log,
            "versions": {"catchjax": catchjax.__version__, "jax": jax.__version__},
        }

    def _write(self, state, log) -> None:
        meta = self._manifest(log)

        def fill(tmp: Path):
            checkpointer = checkpoints._local_checkpointer()
            checkpointer.save(tmp / "state", state)
            checkpointer.wait_until_finished()
            meta["state_sha256"] = checkpoints.state_digest(tmp / "state")
            meta["manifest_sha256"] = checkpoints.manifest_digest(meta)
            (tmp / MANIFEST).write_text(json.dumps(meta, indent=1))

        safe_io.write_dir(self.state_dir, fill, overwrite=True, owned=OWNED, marker=MANIFEST,
                          what="ask/tell search folder")

    @classmethod
    def load(cls, state_dir, *, method: str | None = None, space: str | None = None) -> AskTell:
        """Continue the search saved in ``state_dir``. ``method`` / ``space``: refuse a
        folder of another method or space."""
        import orbax.checkpoint as ocp

        path = Path(state_dir).absolute()
        meta = read_manifest(path)
        try:
            name = methods.canonical_name(meta["method"])
            config = methods.make_config(name, meta["config"]["budget"], **{
                k: v for k, v in meta["config"].items() if k != "budget"})
            domain_name, seed, log = meta["domain"], int(meta["seed"]), list(meta["proposals"])
            trial = int(meta["trial"])
        except (KeyError, TypeError, ValueError, CatchjaxError) as exc:
            raise CatchjaxError(f"{path / MANIFEST} is damaged or from another version: "
                                f"{exc}") from None
        if method is not None and methods.canonical_name(method) != name:
            raise CatchjaxError(f"{path} holds a {name} search, not a {method} search")
        if space is not None and space not in (domain_name, meta.get("space")):
            raise CatchjaxError(f"{path} searches {domain_name}, not {space}")
        domain = domain_by_name(domain_name)
        if domain.fingerprint != meta.get("domain_fingerprint"):
            raise CatchjaxError(
                f"{path}: the architectures of {domain_name} differ from those the search was "
                f"started on (another table or catchjax version); start a new search"
            )
        m = methods.get(name)
        L, K = domain.space.n_decisions, domain.space.n_choices
        agent = m.learner.init(config, jax.random.key(0), L, K) if m.learner else None
        abstract = jax.eval_shape(lambda: m.stepper.start(config, jax.random.key(0),
                                                          domain.arrays, agent))
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract)
        try:
            state = checkpoints._local_checkpointer().restore(path / "state", abstract)
        except Exception as exc:  # orbax raises many types for damaged files
            raise CatchjaxError(f"cannot restore {path / 'state'} ({type(exc).__name__}: "
                                f"{str(exc)[:200]}); the search folder is damaged") from None
        search = cls(name, config, domain, seed, state, log, path, meta.get("agent"), trial)
        if int(state.ledger.n_asked) != len(log):
            raise CatchjaxError(f"{path}: the state and the proposal list disagree; damaged")
        return search


class _TaskView:
    """What ``config.validate(task)`` reads, for a domain (no table)."""

    def __init__(self, domain: Domain):
        self.arrays = domain.arrays
        self.space = domain.space
        self.name = domain.name
        self.n_searchable = len(domain.actions)


def read_manifest(path: Path) -> dict:
    """The manifest of a complete search folder, or a clear error (missing, half-written,
    changed after writing)."""
    path = Path(path).absolute()
    if not path.exists():
        aside = sorted(path.parent.glob(f".{path.name}.{safe_io.OLD_TAG}-*/{path.name}"))
        if aside:
            raise CatchjaxError(
                f"search folder {path} is missing, but a complete earlier copy was set aside "
                f"while it was being replaced (a crash?): {aside[-1]}. Move it back "
                f"(mv {aside[-1]} {path}) and repeat the last ask or tell"
            )
        raise CatchjaxError(f"search folder {path} does not exist; start a search with "
                            f"--method and --space")
    meta_file = path / MANIFEST
    if not meta_file.is_file() or not (path / "state").is_dir():
        raise CatchjaxError(
            f"{path} is not a complete catchjax ask/tell search folder (no {MANIFEST} or "
            f"state/): not one catchjax wrote, or its writing did not finish"
        )
    meta = checkpoints.read_json_object(meta_file)
    if meta.get("kind") != "catchjax ask/tell search" or meta.get("format") != FORMAT:
        raise CatchjaxError(f"{path} is not a catchjax ask/tell search folder (format "
                            f"{meta.get('format')}, kind {meta.get('kind')!r})")
    if checkpoints.manifest_digest(meta) != meta.get("manifest_sha256"):
        raise CatchjaxError(f"{meta_file} was changed after it was written (checksum); "
                            f"restore a copy")
    if checkpoints.state_digest(path / "state") != meta.get("state_sha256"):
        raise CatchjaxError(f"{path}: the files under state/ do not match their checksum; "
                            f"the search folder is damaged")
    return meta
