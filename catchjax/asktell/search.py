"""Ask/tell: a search whose rewards come from outside (a trainer, a cluster job).

``search = AskTell.start(method, domain, ...)``; ``search.ask(k)`` proposes up to k
architectures to evaluate in parallel; ``search.tell(ids, rewards)`` hands their rewards
back. Both run the method's own jitted steps (:class:`catchjax.core.Stepper`), the very
functions its table search is made of, so with the table's rewards an ask/tell search
makes exactly the table sweep's proposals (``tests/test_ask_tell.py``).

A search saved to a folder (``state_dir``) is written after every ask and every tell.
Many workers may drive one folder at once (processes, or several handles in one
program); the folder stays consistent and never loses a told result:

* **One writer at a time.** Every ask, tell, load and save holds the folder's lock
  (``catchjax-search.lock``, :mod:`catchjax.store.locking`) for its whole read-change-write,
  re-reads the folder under it when another handle has changed it since, and applies its
  change to what is there now. So a tell's results are never lost and an id is never
  handed out twice. We chose a lock over an append-only journal because the state is a
  pytree that only the method's jitted steps can rebuild: replaying a journal would re-run
  every step of the search on each load.
* **Generations, never a missing folder.** The folder itself is never moved. A write puts
  the new state pytree (Orbax) in ``state-NNNNNN/``, then atomically replaces the manifest
  ``catchjax-search.json`` (method, config, domain, seed, every proposal with its reward,
  the name and SHA-256 of the current state folder), and only then deletes older
  ``state-*`` folders. A crash at any moment leaves a manifest that names a complete
  state; leftovers of a crashed write are removed by the next write.

:meth:`AskTell.load` continues a search exactly. The command line (``catchjax ask`` /
``catchjax tell``) speaks JSON and CSV files, so a job in any language can drive a search.
Folders of the first format (one ``state/`` folder, replaced as a whole) still load and
are converted on their next write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import time
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import methods, safe_io
from catchjax.benchmarks import spaces
from catchjax.benchmarks.tasks import Task, TaskArrays, make_task
from catchjax.errors import CatchjaxError
from catchjax.runs import compile_cache, numerics
from catchjax.store import checkpoints, locking

FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: one state/ folder, replaced with the whole search folder
MANIFEST = "catchjax-search.json"
LOCK = "catchjax-search.lock"
# what a write may delete inside a search folder: earlier generations of the state, the
# first format's state/, and what a crashed write left (Orbax's and our temporary names)
_STALE = re.compile(r"^(state(-\d{6})?(\.orbax-checkpoint-tmp-\d+)?"
                    rf"|\.{re.escape(MANIFEST)}\.{safe_io.TMP_TAG}-\d+-\w+)$")


# -- what a search proposes from --------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
    """The architectures an ask/tell search proposes from: a space's rows with their
    masks and neighbours, and no rewards (``arrays.reward`` is NaN: the steps never
    read it)."""

    name: str  # a space name ("nb201", "residual", ...), "table:BENCHMARK/TASK" or
    # "categorical:{...}" (a declared space, catchjax.benchmarks.categorical)
    space: spaces.SearchSpace
    arrays: TaskArrays
    actions: np.ndarray  # i32 [n, L], row -> decisions
    spec: dict | None = None  # a declared space's decisions (proposals name the values)

    @property
    def n_searchable(self) -> int:  # what a config's validate(task) reads, as of a Task
        return len(self.actions)

    @functools.cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.actions.tobytes()).hexdigest()[:16]

    def describe(self, row: int) -> dict:
        actions = self.actions[row]
        out = {"arch": self.space.to_str(actions), "actions": [int(a) for a in actions]}
        if self.space.name == "residual":
            from catchjax.residual import decode

            out["spec"] = decode(actions).describe()
        if self.spec is not None:
            from catchjax.benchmarks import categorical

            out["config"] = categorical.configuration(self.spec, actions)
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


def categorical_domain(spec) -> Domain:
    """A declared space (:mod:`catchjax.benchmarks.categorical`): a dict of decisions,
    each a list of choices, with optional forbidden combinations; or the path of a JSON
    file holding one. Its proposals carry ``"config"``: {decision: chosen value}."""
    from catchjax.benchmarks import categorical

    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file():
            raise CatchjaxError(f"space file {path} does not exist")
        try:
            spec = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CatchjaxError(f"space file {path} is not JSON: {exc}") from None
    space, rows, spec = categorical.build(spec)
    name = categorical.PREFIX + json.dumps(spec, separators=(",", ":"))
    return Domain(name, space, _arrays(space, rows), rows, spec)


@functools.lru_cache(maxsize=16)
def _declared(name: str) -> Domain:
    """A declared space from the name a manifest records (built once per process: a
    worker reloads its search before every step)."""
    from catchjax.benchmarks import categorical

    try:
        spec = json.loads(name[len(categorical.PREFIX):], object_pairs_hook=dict)
    except ValueError as exc:
        raise CatchjaxError(f"damaged declared space {name[:60]!r}: {exc}") from None
    return categorical_domain(spec)


def domain_by_name(name: str) -> Domain:
    """A domain from its name: a space, ``table:BENCHMARK/TASK``, ``categorical:{JSON}``
    (as a search's manifest records it) or a ``.json`` file declaring a space."""
    from catchjax.benchmarks import categorical

    if name.startswith(categorical.PREFIX):
        return _declared(name)
    if name.endswith(".json"):
        return categorical_domain(name)
    if name.startswith("table:"):
        bench, _, task = name[len("table:"):].partition("/")
        return task_domain(make_task(bench, task))
    return space_domain(name)


# -- the search ---------------------------------------------------------------------------


@functools.cache
def _jitted(stepper):
    compile_cache.use_default()
    return (numerics.jit(stepper.ask, static_argnums=(0, 3, 4)),
            numerics.jit(stepper.tell, static_argnums=(0, 5)))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _reward(value, what: str) -> float:
    """A reward as the state holds it (float32), or a clear error: booleans, text that is
    no number, NaN, inf and values beyond float32 are refused, never rounded to inf."""
    if isinstance(value, (bool, np.bool_)):
        raise CatchjaxError(f"{what}: the reward is {value!r}, a boolean; give a number")
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise CatchjaxError(f"{what}: the reward {value!r} is not a number") from None
    if not math.isfinite(r):
        raise CatchjaxError(
            f"{what}: the reward is {value!r}; rewards must be finite. Report a failed "
            f"training run as a finite low reward (e.g. 0) rather than NaN or inf"
        )
    if abs(r) > _FLOAT32_MAX:
        raise CatchjaxError(
            f"{what}: the reward {value!r} does not fit the search's float32 rewards "
            f"(|reward| <= {_FLOAT32_MAX:.4g}); rescale the rewards"
        )
    return r


def _proposal_id(value) -> int:
    """A proposal id: an integer, or text or a float holding one exactly ("2", 2.0); 2.7
    and booleans are refused, never truncated."""
    if isinstance(value, (bool, np.bool_)):
        raise CatchjaxError(f"proposal ids must be integers, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise CatchjaxError(f"proposal ids must be integers, got {value!r}")


def _count(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise CatchjaxError(f"k (how many proposals) must be an integer >= 1, got {k!r}")
    return int(k)


def _extra_value(value, where: str):
    """A value kept with a result: JSON's own types; NumPy scalars as Python ones;
    non-finite floats as the strings "nan", "inf", "-inf" (the manifest stays JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    raise CatchjaxError(f"{where} is a {type(value).__name__}; extras hold numbers, text, "
                        f"booleans or None")


def _clean_extras(extras, n: int) -> list:
    if extras is None:
        return [None] * n
    if isinstance(extras, (str, bytes, dict)) or not hasattr(extras, "__len__"):
        raise CatchjaxError(f"extras must be a list of {n} dicts (one per result), got "
                            f"{type(extras).__name__}")
    extras = list(extras)
    if len(extras) != n:
        raise CatchjaxError(f"{n} results but {len(extras)} extras (one dict or None each)")
    out = []
    for i, e in enumerate(extras):
        if e is None:
            out.append(None)
            continue
        if not isinstance(e, dict):
            raise CatchjaxError(f"extras[{i}] is a {type(e).__name__}, not a dict")
        for key in e:
            if not isinstance(key, str):
                raise CatchjaxError(f"extras[{i}] has a key {key!r}; keys must be text")
        out.append({k: _extra_value(v, f"extras[{i}][{k!r}]") for k, v in e.items()})
    return out


def _as_asked(proposal: dict) -> dict:
    """A logged proposal as :meth:`AskTell.ask` hands it out (no reward, no timestamp)."""
    return {k: v for k, v in proposal.items() if k not in ("reward", "asked_at")}


def _same_search(a: dict, b: dict) -> bool:
    keys = ("method", "config", "domain", "domain_fingerprint", "seed", "trial")
    a, b = ({k: json.loads(json.dumps(m.get(k))) for k in keys} for m in (a, b))
    return a == b


_warmed: set = set()


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
    lock_timeout: float = locking.DEFAULT_TIMEOUT
    # the manifest this handle last read or wrote (its digest and generation): a folder
    # changed by another handle since is re-read before this one changes it
    _seen: str | None = dataclasses.field(default=None, repr=False, compare=False)
    _generation: int = dataclasses.field(default=0, repr=False, compare=False)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def start(cls, method: str, domain: Domain | str, *, budget: int | None = None,
              seed: int = 0, trial: int = 0, agent=None, state_dir=None,
              lock_timeout: float = locking.DEFAULT_TIMEOUT, key=None, **settings) -> AskTell:
        """A new search. ``agent``: a :class:`~catchjax.core.TrainedAgent` (meta-trained
        CATCH, trained DQN) or a checkpoint path; its config is kept, ``budget`` (default:
        the method's own) and ``settings`` override the rest. ``state_dir``: save the
        search there (it must not exist yet). The key is a sweep's: ``seed`` and ``trial``
        give trial ``trial`` of ``catchjax.sweep(..., seed=seed)``; ``key`` (a typed PRNG key)
        replaces it for drivers that derive their own (:mod:`catchjax.asktell.meta`)."""
        from catchjax.runs.sweeps import check_seed, trial_key

        if isinstance(domain, (str, os.PathLike)):
            domain = domain_by_name(str(domain))
        elif isinstance(domain, dict):  # a declared space
            domain = categorical_domain(domain)
        elif not isinstance(domain, Domain):
            raise CatchjaxError(
                f"domain must be a space name (nb201, transnas-micro, transnas-macro, "
                f"residual, table:BENCHMARK/TASK), a declared space (a dict of decisions or "
                f"a .json file) or a Domain, got {type(domain).__name__}"
            )
        if not isinstance(method, str):
            raise CatchjaxError(f"method must be a method name (`catchjax methods`), got "
                                f"{method!r}")
        name = methods.canonical_name(method)
        m = methods.get(name)
        if m.stepper is None:
            raise CatchjaxError(f"method {name!r} has no ask/tell steps")
        check_seed(seed)
        lock_timeout = locking.timeout_value(lock_timeout)
        if isinstance(trial, bool) or not isinstance(trial, numbers.Integral) or trial < 0:
            raise CatchjaxError(f"trial must be an integer >= 0, got {trial!r}")
        trial = int(trial)
        if state_dir is not None:
            state_dir = _check_new_state_dir(state_dir)
        source = None
        if isinstance(agent, (str, Path)):
            source = {"path": str(Path(agent).absolute()),
                      "manifest_sha256": checkpoints.read_manifest(agent).get("manifest_sha256")}
            agent = checkpoints.load_agent(agent, method=name, budget=budget, **settings)
        if agent is not None:
            from catchjax.core import TrainedAgent

            if not isinstance(agent, TrainedAgent):
                raise CatchjaxError(
                    f"agent must be a checkpoint path or a TrainedAgent (catchjax.runs.agent."
                    f"train's result), got {type(agent).__name__}"
                )
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
                    f"catchjax.runs.agent.train's result), or --init CHECKPOINT, trained on the "
                    f"{domain.space.name} space (e.g. `catchjax train --method {name} "
                    f"--benchmark ...`); or search from scratch (catch-sfs)"
                )
        config = methods.specialize(config, domain)  # a domain is what validate reads
        methods.validate(config, domain, params)
        if config.budget > MAX_BUDGET:
            raise CatchjaxError(
                f"budget {config.budget} is more evaluations than an ask/tell search keeps "
                f"(at most {MAX_BUDGET:,}); every proposal is saved after each step"
            )
        if key is None:
            key = trial_key(seed, trial)
        elif not jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
            raise CatchjaxError(f"key must be a typed PRNG key (jax.random.key), got {key!r}")
        compile_cache.use_default()
        state = numerics.jit(m.stepper.start, static_argnums=0)(config, key, domain.arrays, params)
        search = cls(name, config, domain, seed, state, [], state_dir, source, trial,
                     lock_timeout)
        if state_dir is not None:
            search._create()
        return search

    @classmethod
    def open(cls, state_dir, *, method: str | None = None, space: str | None = None,
             budget: int | None = None, seed: int | None = None, agent=None,
             settings: dict | None = None,
             lock_timeout: float = locking.DEFAULT_TIMEOUT) -> AskTell:
        """The search in ``state_dir``, started there first when the folder does not
        exist yet (then ``method`` and ``space`` are needed). What is given for an
        existing search must equal what it was started with: a different budget, seed,
        setting or agent is refused, never ignored. Several workers may call this at
        once for one new folder: one starts the search, the others continue it."""
        settings = dict(settings or {})
        path = _real_path(state_dir)
        safe_io.restore_set_aside(path)
        if not path.exists():
            if not (method and space):
                raise CatchjaxError(
                    f"{path} does not exist: start a search with --method and --space (e.g. "
                    f"--method catch-sfs --space residual)"
                )
            try:
                return cls.start(method, space, budget=budget,
                                 seed=0 if seed is None else seed, agent=agent,
                                 state_dir=path, lock_timeout=lock_timeout, **settings)
            except _StartedMeanwhile:
                pass  # another worker started it first: continue theirs
        search = cls.load(path, method=method, space=space, lock_timeout=lock_timeout)
        search.check_started_with(budget=budget, seed=seed, agent=agent, settings=settings)
        return search

    def check_started_with(self, *, budget=None, seed=None, agent=None,
                           settings=None) -> None:
        """Refuse arguments that differ from what this search was started with (they
        would otherwise be ignored silently)."""
        where = f"the search in {self.state_dir}" if self.state_dir else "this search"
        differ = []
        if budget is not None and budget != self.config.budget:
            differ.append(f"budget {budget} (it has {self.config.budget})")
        if seed is not None and seed != self.seed:
            differ.append(f"seed {seed} (it has {self.seed})")
        for key, value in (settings or {}).items():
            if key == "budget":
                raise CatchjaxError("the budget is --budget / budget=, not a setting")
            if not hasattr(self.config, key):
                raise CatchjaxError(f"{self.method} has no setting {key!r}; settings: "
                                    f"{', '.join(methods.setting_names(self.method))}")
            hint = typing.get_type_hints(type(self.config))[key]
            parsed = methods.parse_value(self.method, key, hint, value)
            if parsed != getattr(self.config, key):
                differ.append(f"{key}={value} (it has {getattr(self.config, key)})")
        if agent is not None:
            saved = (self.agent_source or {}).get("path")
            given = str(Path(agent).absolute()) if isinstance(agent, (str, Path)) else None
            if given is None or given != saved:
                differ.append(f"agent {agent} (it has {saved or 'none'})")
        if differ:
            raise CatchjaxError(
                f"{where} was started with other arguments: {'; '.join(differ)}. Leave them "
                f"out to continue it, or start a new search in another folder"
            )

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
        with self._exclusive():
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

    def _plan(self, k: int) -> tuple[int, bool]:
        n = min(k, self.ready())
        seeding = self.n_asked < self.stepper.first(self.config)
        if seeding:
            n = min(n, self.stepper.first(self.config) - self.n_asked)
        return n, seeding

    def ask(self, k: int = 1) -> list[dict]:
        """Up to ``k`` new proposals (fewer when the method must first hear rewards or the
        budget is spent: :meth:`why_not_more` says which), each ``{"id", "arch",
        "actions"}`` (+ ``"spec"`` in the residual space). Saved before it returns; with
        a folder, under its lock and after catching up with what other workers told."""
        k = _count(k)
        ask, _ = _jitted(self.stepper)
        n, seeding = self._plan(k)
        if n and self.state_dir is not None and (self.stepper, self.config, n, seeding) \
                not in _warmed:  # compile outside the lock, so others need not wait for it
            ask(self.config, self.state, self.domain.arrays, n, seeding)
            _warmed.add((self.stepper, self.config, n, seeding))
        with self._exclusive():
            n, seeding = self._plan(k)
            if n == 0:
                return []
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
            if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
                raise CatchjaxError(f"ids must be a list of proposal ids, got {ids!r}")
            ids = [_proposal_id(i) for i in ids]
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
        nothing is saved on an error. With a folder, this happens under its lock and
        after catching up with what other workers asked and told, so no result is lost."""
        if isinstance(rewards, (str, bytes)) or not hasattr(rewards, "__iter__"):
            raise CatchjaxError(f"rewards must be a list of numbers, got {rewards!r}")
        rewards = list(rewards)
        values = [_reward(r, f"result {n}") for n, r in enumerate(rewards)]
        if self.state_dir is not None:
            self._warm_tell(ids, archs, values)
        with self._exclusive():
            ids = self.resolve(ids, archs)
            if len(rewards) != len(ids):
                raise CatchjaxError(f"{len(ids)} proposals but {len(rewards)} rewards")
            if not ids:
                raise CatchjaxError("tell needs at least one result")
            extras = _clean_extras(extras, len(ids))
            if len(set(ids)) != len(ids):
                seen, twice = set(), []
                for i in ids:
                    if i in seen and i not in twice:
                        twice.append(i)
                    seen.add(i)
                shown = ", ".join(map(str, twice[:10])) + (
                    f" and {len(twice) - 10} more" if len(twice) > 10 else "")
                raise CatchjaxError(f"a proposal appears twice in one tell: {shown}")
            for i in ids:
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
            _, tell = _jitted(self.stepper)
            state = self.state
            for start, end, seeding in self._runs(ids):  # in the order given
                state, _ = tell(self.config, state, self.domain.arrays,
                                jnp.asarray(ids[start:end], jnp.int32),
                                jnp.asarray(values[start:end], jnp.float32), seeding)
            now = time.time()
            log = [dict(p) for p in self.log]
            for n, (i, r) in enumerate(zip(ids, values)):
                log[i].update(reward=r, told_at=now)
                if extras[n]:
                    log[i]["extras"] = extras[n]
            if self.state_dir is not None:
                self._write(state, log)
            self.state, self.log = state, log

    def _runs(self, ids) -> list[tuple[int, int, bool]]:
        """(start, end, seeding) of the runs of seeds / non-seeds in ``ids``, in order."""
        first = self.stepper.first(self.config)
        out, start = [], 0
        while start < len(ids):
            seeding = ids[start] < first
            end = start
            while end < len(ids) and (ids[end] < first) == seeding:
                end += 1
            out.append((start, end, seeding))
            start = end
        return out

    def _warm_tell(self, ids, archs, values) -> None:
        """Compile the tell steps this tell will run before taking the lock (a CATCH
        update compiles for seconds; other workers should not wait for that)."""
        try:
            ids = self.resolve(ids, archs)
        except CatchjaxError:
            return  # checked again under the lock, against the folder as it is then
        _, tell = _jitted(self.stepper)
        for start, end, seeding in self._runs(ids):
            sig = ("tell", self.stepper, self.config, end - start, seeding)
            if sig not in _warmed:
                tell(self.config, self.state, self.domain.arrays,
                     jnp.zeros((end - start,), jnp.int32),
                     jnp.asarray(values[start:end], jnp.float32), seeding)
                _warmed.add(sig)

    def best(self) -> dict | None:
        told = [p for p in self.log if p["reward"] is not None]
        return max(told, key=lambda p: p["reward"]) if told else None

    def history(self) -> list[dict]:
        """Every proposal so far as one row each, with the same keys in every row (a table:
        ``pandas.DataFrame(search.history())``, or ``csv.DictWriter``): id, arch, actions
        (as text), reward (None until told), asked_at, told_at (Unix seconds) and one
        ``extra_<key>`` column per key of the extras told."""
        keys = sorted({k for p in self.log for k in (p.get("extras") or {})})
        return [{"id": p["id"], "arch": p["arch"],
                 "actions": " ".join(str(a) for a in p["actions"]),
                 "reward": p.get("reward"), "asked_at": p.get("asked_at"),
                 "told_at": p.get("told_at"),
                 **{f"extra_{k}": (p.get("extras") or {}).get(k) for k in keys}}
                for p in self.log]

    def __repr__(self) -> str:  # short: the state's arrays are not what a reader wants
        told = sum(p["reward"] is not None for p in self.log)
        best = self.best()
        where = f", folder {self.state_dir}" if self.state_dir is not None else ""
        return (f"AskTell({self.method} on {self.domain.name}, budget {self.config.budget}, "
                f"seed {self.seed}, asked {len(self.log)}, told {told}"
                + (f", best {best['reward']:.6g} (id {best['id']})" if best else "")
                + f"{where})")

    # -- persistence ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, refresh: bool = True):
        """Hold the folder's lock and, with ``refresh``, catch up with the folder first."""
        if self.state_dir is None:
            yield
            return
        with locking.hold(self.state_dir / LOCK, timeout=self.lock_timeout,
                          what=f"search folder {self.state_dir}"):
            if refresh:
                self._refresh()
            yield

    def _refresh(self) -> None:
        meta = read_manifest(self.state_dir, check_state=False)
        if meta["manifest_sha256"] == self._seen:
            return
        if not _same_search(meta, self._manifest(self.log)):
            raise CatchjaxError(
                f"{self.state_dir} now holds another search (method {meta.get('method')}, "
                f"seed {meta.get('seed')}) than the one this handle opened; load it anew"
            )
        # the same search, moved on by another worker: its state and log, with this
        # handle's method, config and domain (not rebuilt: a table domain reloads a table)
        state_name = meta.get("state_dir", "state")
        if checkpoints.state_digest(self.state_dir / state_name) != meta.get("state_sha256"):
            raise CatchjaxError(f"{self.state_dir}: the files under {state_name}/ do not "
                                f"match their checksum; the search folder is damaged")
        state = _restore_state(self.state_dir / state_name, self.method, self.config,
                               self.domain)
        log = list(meta["proposals"])
        if int(state.ledger.n_asked) != len(log):
            raise CatchjaxError(f"{self.state_dir}: the state and the proposal list "
                                f"disagree; damaged")
        self.state, self.log = state, log
        self._seen, self._generation = meta["manifest_sha256"], int(meta.get("generation", 0))

    def save(self) -> None:
        """Write this handle's search to its folder (under the lock). Refused when
        another handle has changed the folder since this one read it: saving would drop
        that handle's asks and tells."""
        if self.state_dir is None:
            raise CatchjaxError("this search has no folder: start it with state_dir=")
        with self._exclusive(refresh=False):
            meta = read_manifest(self.state_dir, check_state=False)
            if meta["manifest_sha256"] != self._seen:
                raise CatchjaxError(
                    f"{self.state_dir} was changed by another worker since this handle read "
                    f"it; saving would drop their results. AskTell.load it again"
                )
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

    def _write_generation(self, folder: Path, state, log, generation: int) -> dict:
        """Write ``state`` as generation ``generation`` into ``folder``, then the manifest
        naming it (atomically); the caller holds the lock or owns the folder."""
        name = f"state-{generation:06d}"
        target = folder / name
        if target.exists():  # a crashed write of this generation; the manifest never named it
            shutil.rmtree(target)
        checkpointer = checkpoints.local_checkpointer()
        checkpointer.save(target, state)
        checkpointer.wait_until_finished()
        meta = self._manifest(log)
        meta["state_dir"], meta["generation"] = name, generation
        meta["state_sha256"] = checkpoints.state_digest(target)
        meta["manifest_sha256"] = checkpoints.manifest_digest(meta)
        safe_io.atomic_write_bytes(folder / MANIFEST,
                                   json.dumps(meta, indent=1, allow_nan=False).encode(),
                                   durable=True)
        return meta

    def _write(self, state, log) -> None:
        meta = self._write_generation(self.state_dir, state, log, self._generation + 1)
        self._seen, self._generation = meta["manifest_sha256"], meta["generation"]
        for entry in self.state_dir.iterdir():  # only now: older generations, leftovers
            if entry.name != meta["state_dir"] and _STALE.match(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _create(self) -> None:
        """Write a new search folder whole, then move it in; a folder another worker
        created meanwhile is never replaced (:class:`_StartedMeanwhile`)."""
        path = self.state_dir
        tmp = safe_io.make_temp_dir(path)
        try:
            (tmp / LOCK).touch()
            meta = self._write_generation(tmp, self.state, self.log, 1)
            os.chmod(tmp, 0o777 & ~safe_io.current_umask())
            try:
                os.rename(tmp, path)  # fails on a non-empty folder: never replaces one
            except OSError:
                if path.exists():
                    raise _StartedMeanwhile(
                        f"{path} already exists (another worker started it meanwhile); "
                        f"continue that search with AskTell.load / `catchjax ask --state "
                        f"{path}`, or pick a new folder"
                    ) from None
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._seen, self._generation = meta["manifest_sha256"], 1

    @classmethod
    def load(cls, state_dir, *, method: str | None = None, space: str | None = None,
             lock_timeout: float = locking.DEFAULT_TIMEOUT, lock: bool = True) -> AskTell:
        """Continue the search saved in ``state_dir`` (read under its lock, so never in
        the middle of another worker's write). ``method`` / ``space``: refuse a folder of
        another method or space."""
        path = _real_path(state_dir)
        safe_io.restore_set_aside(path)
        lock_timeout = locking.timeout_value(lock_timeout)
        if lock and path.is_dir():
            with locking.hold(path / LOCK, timeout=lock_timeout,
                              what=f"search folder {path}", read_only_ok=True):
                return cls.load(path, method=method, space=space,
                                lock_timeout=lock_timeout, lock=False)
        meta = read_manifest(path)
        try:
            name = methods.canonical_name(meta["method"])
            config = methods.make_config(name, meta["config"]["budget"], saved=True, **{
                k: v for k, v in meta["config"].items() if k != "budget"})
            domain_name, seed, log = meta["domain"], int(meta["seed"]), list(meta["proposals"])
            trial = int(meta["trial"])
            generation = int(meta.get("generation", 0))
        except (KeyError, TypeError, ValueError, CatchjaxError) as exc:
            raise CatchjaxError(f"{path / MANIFEST} is damaged or from another version: "
                                f"{exc}") from None
        if method is not None and methods.canonical_name(method) != name:
            raise CatchjaxError(f"{path} holds a {name} search, not a {method} search")
        if space is not None and str(space).endswith(".json"):
            space = categorical_domain(space).name  # the same declaration, from its file
        if space is not None and space not in (domain_name, meta.get("space")):
            raise CatchjaxError(f"{path} searches {domain_name}, not {space}")
        domain = domain_by_name(domain_name)
        if domain.fingerprint != meta.get("domain_fingerprint"):
            raise CatchjaxError(
                f"{path}: the architectures of {domain_name} differ from those the search was "
                f"started on (another table or catchjax version); start a new search"
            )
        state = _restore_state(path / meta.get("state_dir", "state"), name, config, domain)
        search = cls(name, config, domain, seed, state, log, path, meta.get("agent"), trial,
                     lock_timeout, meta["manifest_sha256"], generation)
        if int(state.ledger.n_asked) != len(log):
            raise CatchjaxError(f"{path}: the state and the proposal list disagree; damaged")
        return search


MAX_BUDGET = 1_000_000


class _StartedMeanwhile(CatchjaxError):
    """The folder of a search being started appeared meanwhile (another worker)."""


def _real_path(state_dir) -> Path:
    """The search folder, a link resolved once: the real folder is what is written."""
    if state_dir is None or str(state_dir).strip() == "":
        raise CatchjaxError("the search folder is empty (''); name a folder")
    if not isinstance(state_dir, (str, os.PathLike)):
        raise CatchjaxError(f"the search folder must be a path, got {state_dir!r}")
    return Path(state_dir).expanduser().resolve()


def _check_new_state_dir(state_dir) -> Path:
    path = _real_path(state_dir)
    safe_io.restore_set_aside(path)
    if path.exists():
        raise CatchjaxError(
            f"{path} already exists; continue that search with AskTell.load / "
            f"`catchjax ask --state {path}` (without --method), or pick a new folder"
        )
    safe_io.check_output_dir(path, False, owned=set(), marker=MANIFEST,
                             what="ask/tell search")
    return path


@functools.lru_cache(maxsize=32)
def _state_shapes(name: str, config, domain: Domain):
    """The shapes and dtypes of a search state (what a restore fills), traced once per
    method, config and domain: a worker that catches up before every step does not
    re-trace or initialize an agent for it."""
    import orbax.checkpoint as ocp

    m = methods.get(name)
    L, K = domain.space.n_decisions, domain.space.n_choices

    def start():
        agent = m.learner.init(config, jax.random.key(0), L, K) if m.learner else None
        return m.stepper.start(config, jax.random.key(0), domain.arrays, agent)

    return jax.tree.map(ocp.utils.to_shape_dtype_struct, jax.eval_shape(start))


def _restore_state(state_path: Path, name: str, config, domain: Domain):
    try:
        return checkpoints.local_checkpointer().restore(
            state_path, _state_shapes(name, config, domain))
    except Exception as exc:  # orbax raises many types for damaged files
        raise CatchjaxError(f"cannot restore {state_path} ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); the search folder is damaged") from None


def read_manifest(path: Path, *, check_state: bool = True) -> dict:
    """The manifest of a complete search folder, or a clear error (missing, half-written,
    changed after writing). ``check_state``: also check the state files' checksum."""
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
    if not meta_file.is_file():
        raise CatchjaxError(
            f"{path} is not a complete catchjax ask/tell search folder (no {MANIFEST}): not "
            f"one catchjax wrote, or its writing did not finish"
        )
    meta = checkpoints.read_json_object(meta_file)
    if meta.get("kind") != "catchjax ask/tell search" or \
            meta.get("format") not in READABLE_FORMATS:
        raise CatchjaxError(f"{path} is not a catchjax ask/tell search folder (format "
                            f"{meta.get('format')}, kind {meta.get('kind')!r})")
    if checkpoints.manifest_digest(meta) != meta.get("manifest_sha256"):
        raise CatchjaxError(f"{meta_file} was changed after it was written (checksum); "
                            f"restore a copy")
    state_name = meta.get("state_dir", "state")
    if not isinstance(state_name, str) or not _STALE.match(state_name) or \
            not (path / state_name).is_dir():
        raise CatchjaxError(
            f"{path} is not a complete catchjax ask/tell search folder (no state folder "
            f"{state_name!r}): its writing did not finish or it was damaged"
        )
    if check_state and checkpoints.state_digest(path / state_name) != meta.get("state_sha256"):
        raise CatchjaxError(f"{path}: the files under {state_name}/ do not match their "
                            f"checksum; the search folder is damaged")
    return meta
