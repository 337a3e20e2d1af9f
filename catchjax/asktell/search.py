"""Ask/tell: a search whose rewards come from outside (a trainer, a cluster job).

``search = AskTell.start(method, domain, ...)``; ``search.ask(k)`` proposes up to k
architectures to evaluate in parallel; ``search.tell(ids, rewards)`` hands their rewards
back. Both run the method's own jitted steps (:class:`catchjax.core.Stepper`), the very
functions its table search is made of, so with the table's rewards an ask/tell search
makes exactly the table sweep's proposals (``tests/test_ask_tell.py``).

:class:`AskTell` is the search in memory. Given a folder (``state_dir``) it is saved
after every ask and every tell, and many workers may drive that folder at once, never
losing a told result: each step takes the folder's lock, catches up with what other
workers wrote, steps, and writes a new generation (:mod:`catchjax.asktell.saved`).
:meth:`AskTell.load` continues a search exactly. The command line (``catchjax ask`` /
``catchjax tell``) speaks JSON and CSV files, so a job in any language can drive a search.

The architectures come from a domain (:mod:`catchjax.asktell.domains`); what callers
hand in is checked by :mod:`catchjax.asktell.checks`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import numbers
import time
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from catchjax import methods, safe_io
from catchjax.asktell import checks, saved
from catchjax.asktell import objectives as multi
from catchjax.asktell.domains import (
    Domain,
    as_domain,
    categorical_domain,
    domain_by_name,
    space_domain,
    task_domain,
)
from catchjax.asktell.saved import FORMAT, LOCK, MANIFEST, read_manifest
from catchjax.core import Method, TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.runs import compile_cache, numerics
from catchjax.runs.sweeps import check_seed, trial_key
from catchjax.store import checkpoints, folder

__all__ = ["FORMAT", "LOCK", "MANIFEST", "MAX_BUDGET", "AskTell", "Domain",
           "categorical_domain", "domain_by_name", "read_manifest", "space_domain",
           "task_domain"]

MAX_BUDGET = 1_000_000
_warmed: set = set()  # the step shapes this process has compiled


@functools.cache
def _jitted(stepper):
    compile_cache.use_default()
    return (numerics.jit(stepper.ask, static_argnums=(0, 3, 4)),
            numerics.jit(stepper.tell, static_argnums=(0, 5)))


@dataclasses.dataclass
class AskTell:
    """A search driven from outside. Host object around the method's state pytree."""

    method: str
    config: object
    domain: Domain
    seed: int
    state: object
    log: list  # one dict per proposal: id, arch, actions, reward, extras, times
    agent_source: dict | None = None  # the checkpoint a trained agent came from
    trial: int = 0
    registered: Method | None = dataclasses.field(default=None, repr=False)
    store: saved.SearchFolder | None = dataclasses.field(default=None, repr=False)
    # several objectives (catchjax.asktell.objectives): a tell gives one value per objective
    objectives: tuple = ()
    weights: tuple = ()  # the trial's weight vector that scalarizes them

    def __post_init__(self):
        if self.registered is None:
            self.registered = methods.get(self.method)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def start(cls, method: str, domain: Domain | str, *, budget: int | None = None,
              seed: int = 0, trial: int = 0, agent=None, state_dir=None,
              lock_timeout: float = folder.DEFAULT_TIMEOUT, key=None, objectives=None,
              **settings) -> AskTell:
        """A new search. ``agent``: a :class:`~catchjax.core.TrainedAgent` (meta-trained
        CATCH, trained DQN) or a checkpoint path; its config is kept, ``budget`` (default:
        the method's own) and ``settings`` override the rest. ``state_dir``: save the
        search there (it must not exist yet). The key is a sweep's: ``seed`` and ``trial``
        give trial ``trial`` of ``catchjax.sweep(..., seed=seed)``; ``key`` (a typed PRNG
        key) replaces it for drivers that derive their own (:mod:`catchjax.asktell.meta`).
        ``objectives``: two or more ``NAME:max:LOW:HIGH`` (:mod:`catchjax.asktell.objectives`);
        each tell then gives one value per objective."""
        domain, m = as_domain(domain), _registered(method)
        check_seed(seed)
        lock_timeout, trial = folder.timeout_value(lock_timeout), _trial(trial)
        objs, weights = multi.of_trial(objectives, seed, trial)
        store = None if state_dir is None else saved.SearchFolder.new(state_dir, lock_timeout)
        source, agent = _agent_of(agent, m, domain, budget, settings)
        config, params = _config(m, domain, budget, agent, settings)
        compile_cache.use_default()
        start = numerics.jit(m.stepper.start, static_argnums=0)
        state = start(config, _key(key, seed, trial), domain.arrays, params)
        search = cls(m.name, config, domain, seed, state, [], source, trial, m, store, objs,
                     weights)
        if store is not None:
            store.create(saved.manifest(search, search.log), state)
        return search

    @classmethod
    def open(cls, state_dir, *, method: str | None = None, space: str | None = None,
             budget: int | None = None, seed: int | None = None, agent=None,
             settings: dict | None = None, objectives=None,
             lock_timeout: float = folder.DEFAULT_TIMEOUT) -> AskTell:
        """The search in ``state_dir``, started there first when the folder does not
        exist yet (then ``method`` and ``space`` are needed). What is given for an
        existing search must equal what it was started with: a different budget, seed,
        setting or agent is refused, never ignored. Several workers may call this at
        once for one new folder: one starts the search, the others continue it."""
        settings = dict(settings or {})
        path = saved.real_path(state_dir)
        safe_io.restore_set_aside(path)
        if not path.exists():
            if not (method and space):
                raise CatchjaxError(
                    f"{path} does not exist: start a search with --method and --space (e.g. "
                    f"--method catch-sfs --space residual)")
            try:
                return cls.start(method, space, budget=budget,
                                 seed=0 if seed is None else seed, agent=agent,
                                 state_dir=path, lock_timeout=lock_timeout,
                                 objectives=objectives, **settings)
            except folder.ExistsAlready:
                pass  # another worker started it first: continue theirs
        search = cls.load(path, method=method, space=space, lock_timeout=lock_timeout)
        search.check_started_with(budget=budget, seed=seed, agent=agent, settings=settings,
                                  objectives=objectives)
        return search

    @classmethod
    def load(cls, state_dir, *, method: str | None = None, space: str | None = None,
             lock_timeout: float = folder.DEFAULT_TIMEOUT, lock: bool = True) -> AskTell:
        """Continue the search saved in ``state_dir`` (read under its lock, so never in
        the middle of another worker's write). ``method`` / ``space``: refuse a folder of
        another method or space."""
        fields, store = saved.load(state_dir, method=method, space=space,
                                   lock_timeout=lock_timeout, lock=lock)
        return cls(**fields, store=store)

    def check_started_with(self, *, budget=None, seed=None, agent=None,
                           settings=None, objectives=None) -> None:
        """Refuse arguments that differ from what this search was started with (they
        would otherwise be ignored silently)."""
        differ = _differences(self, budget, seed, agent, settings or {}, objectives)
        if differ:
            raise CatchjaxError(
                f"{f'the search in {self.state_dir}' if self.state_dir else 'this search'} "
                f"was started with other arguments: {'; '.join(differ)}. Leave them out to "
                f"continue it, or start a new search in another folder")

    # -- where it stands -----------------------------------------------------------------
    @property
    def stepper(self):
        return self.registered.stepper

    @property
    def state_dir(self) -> Path | None:
        return None if self.store is None else self.store.path

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
            return [checks.as_asked(p) for p in self.log if p["reward"] is None]

    def ready(self) -> int:
        """How many proposals :meth:`ask` can make now."""
        return int(self.stepper.ready(self.config, self.state))

    def why_not_more(self) -> str:
        """Why :meth:`ask` gives fewer proposals than asked for ("" when it need not)."""
        return _why_not_more(self)

    def best(self) -> dict | None:
        """The told proposal of the highest reward (with objectives: scalarized)."""
        told = [p for p in self.log if p["reward"] is not None]
        return max(told, key=lambda p: p["reward"]) if told else None

    def front(self) -> list[dict]:
        """With objectives: the told proposals no other told proposal dominates."""
        return multi.front(self.log, self.objectives)

    def history(self) -> list[dict]:
        """Every proposal so far as one row each, with the same keys in every row (a table:
        ``pandas.DataFrame(search.history())``, or ``csv.DictWriter``): id, arch, actions
        (as text), reward (None until told), asked_at, told_at (Unix seconds) and one
        ``extra_<key>`` column per key of the extras told."""
        return _history_rows(self.log)

    def __repr__(self) -> str:  # short: the state's arrays are not what a reader wants
        return _describe(self)

    # -- steps ---------------------------------------------------------------------------
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
        k = checks.proposal_count(k)
        ask, _ = _jitted(self.stepper)
        n, seeding = self._plan(k)
        if n and self.store is not None and (self.stepper, self.config, n, seeding) \
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
            self._commit(state, self.log + new)
            return [checks.as_asked(p) for p in new]

    def resolve(self, ids=None, archs=None) -> list[int]:
        """Proposal ids for a tell: ``ids`` as given (checked), or matched from ``archs``
        (the oldest pending proposal of that arch)."""
        return checks.tell_ids(self.log, ids, archs)

    def tell(self, ids=None, rewards=(), *, archs=None, extras=None) -> None:
        """The rewards of proposals ``ids`` (or of the pending proposals named by
        ``archs``), learned in the order given. ``extras``: optional dicts saved with each
        result (e.g. accuracy, latency). With objectives, each result is one value per
        objective (a dict by name, or a list in their order). Everything is checked before
        the state changes; nothing is saved on an error. With a folder, this happens under
        its lock and after catching up with what other workers asked and told, so no
        result is lost."""
        if isinstance(rewards, (str, bytes)) or not hasattr(rewards, "__iter__"):
            raise CatchjaxError(f"rewards must be a list of numbers, got {rewards!r}")
        rewards = list(rewards)
        values, told = _rewards(self, rewards)
        if self.store is not None:
            _warm_tell(self, ids, archs, values)
        with self._exclusive():
            ids = self.resolve(ids, archs)
            extras = checks.check_tell(self.log, ids, len(rewards), extras)
            _, tell = _jitted(self.stepper)
            state = self.state
            for start, end, seeding in _runs(self.stepper.first(self.config), ids):
                state, _ = tell(self.config, state, self.domain.arrays,
                                jnp.asarray(ids[start:end], jnp.int32),
                                jnp.asarray(values[start:end], jnp.float32), seeding)
            now, log = time.time(), [dict(p) for p in self.log]
            for n, (i, r) in enumerate(zip(ids, values)):
                log[i].update(reward=r, told_at=now, **({"values": told[n]} if told else {}))
                if extras[n]:
                    log[i]["extras"] = extras[n]
            self._commit(state, log)

    # -- the folder ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, refresh: bool = True):
        """Hold the folder's lock and, with ``refresh``, catch up with the folder first."""
        if self.store is None:
            yield
            return
        with self.store.hold():
            if refresh:
                moved = self.store.changes(saved.manifest(self, self.log), self.registered,
                                           self.config, self.domain)
                if moved is not None:
                    self.state, self.log = moved
            yield

    def _commit(self, state, log) -> None:
        """The step's result: on disk first (an error leaves both unchanged), then here."""
        if self.store is not None:
            self.store.write(saved.manifest(self, log), state)
        self.state, self.log = state, log

    def save(self) -> None:
        """Write this handle's search to its folder (under the lock). Refused when
        another handle has changed the folder since this one read it: saving would drop
        that handle's asks and tells."""
        if self.store is None:
            raise CatchjaxError("this search has no folder: start it with state_dir=")
        with self._exclusive(refresh=False):
            self.store.check_unchanged()
            self.store.write(saved.manifest(self, self.log), self.state)


def _why_not_more(search: AskTell) -> str:
    if search.n_asked >= search.config.budget:
        return f"the search's budget of {search.config.budget} evaluations is spent"
    if search.ready():
        return ""
    return (f"the method needs the rewards of proposals {search.pending} before it proposes "
            f"more") if search.pending else "the search has ended (the agent stopped)"


def _describe(search: AskTell) -> str:
    told, best = sum(p["reward"] is not None for p in search.log), search.best()
    where = f", folder {search.state_dir}" if search.state_dir is not None else ""
    return (f"AskTell({search.method} on {search.domain.name}, budget {search.config.budget}, "
            f"seed {search.seed}, asked {len(search.log)}, told {told}"
            + (f", best {best['reward']:.6g} (id {best['id']})" if best else "")
            + (f", {len(search.objectives)} objectives" if search.objectives else "")
            + f"{where})")


def _rewards(search: AskTell, results: list) -> tuple[list[float], list | None]:
    """(rewards the method learns, each result's values by objective or None)."""
    if not search.objectives:
        return [checks.reward_value(r, f"result {n}") for n, r in enumerate(results)], None
    values = multi.values_of(search.objectives, results)
    told = [{o.name: float(v) for o, v in zip(search.objectives, row)} for row in values]
    return multi.rewards(search.objectives, search.weights, values), told


def _history_rows(log: list) -> list[dict]:
    """The proposal ``log`` as rows with the same keys each (see ``AskTell.history``)."""
    keys = sorted({k for p in log for k in (p.get("extras") or {})})
    names = list(dict.fromkeys(k for p in log for k in (p.get("values") or {})))
    return [{"id": p["id"], "arch": p["arch"],
             "actions": " ".join(str(a) for a in p["actions"]),
             "reward": p.get("reward"), "asked_at": p.get("asked_at"),
             "told_at": p.get("told_at"),
             **{f"value_{k}": (p.get("values") or {}).get(k) for k in names},
             **{f"extra_{k}": (p.get("extras") or {}).get(k) for k in keys}}
            for p in log]



# -- steps outside the lock ------------------------------------------------------------


def _runs(first: int, ids) -> list[tuple[int, int, bool]]:
    """(start, end, seeding) of the runs of seeds (ids below ``first``) and non-seeds in
    ``ids``, in order: each run is one tell step."""
    out, start = [], 0
    while start < len(ids):
        seeding, end = ids[start] < first, start
        while end < len(ids) and (ids[end] < first) == seeding:
            end += 1
        out.append((start, end, seeding))
        start = end
    return out


def _warm_tell(search: AskTell, ids, archs, values) -> None:
    """Compile the tell steps a tell will run before it takes the lock (a CATCH update
    compiles for seconds; other workers should not wait for that)."""
    try:
        ids = search.resolve(ids, archs)
    except CatchjaxError:
        return  # checked again under the lock, against the folder as it is then
    _, tell = _jitted(search.stepper)
    for start, end, seeding in _runs(search.stepper.first(search.config), ids):
        sig = ("tell", search.stepper, search.config, end - start, seeding)
        if sig not in _warmed:
            tell(search.config, search.state, search.domain.arrays,
                 jnp.zeros((end - start,), jnp.int32),
                 jnp.asarray(values[start:end], jnp.float32), seeding)
            _warmed.add(sig)


# -- starting a search --------------------------------------------------------------------


def _registered(method) -> Method:
    if not isinstance(method, str):
        raise CatchjaxError(f"method must be a method name (`catchjax methods`), got "
                            f"{method!r}")
    m = methods.get(method)
    if m.stepper is None:
        raise CatchjaxError(f"method {m.name!r} has no ask/tell steps")
    return m


def _trial(trial) -> int:
    if isinstance(trial, bool) or not isinstance(trial, numbers.Integral) or trial < 0:
        raise CatchjaxError(f"trial must be an integer >= 0, got {trial!r}")
    return int(trial)


def _key(key, seed: int, trial: int):
    if key is None:
        return trial_key(seed, trial)
    if not jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        raise CatchjaxError(f"key must be a typed PRNG key (jax.random.key), got {key!r}")
    return key


def _config(m: Method, domain: Domain, budget, agent, settings: dict):
    """(config, agent parameters or None) of a new search: a trained agent's config is
    kept; ``budget`` and ``settings`` override the rest."""
    if agent is not None:
        settings = {**{k: v for k, v in dataclasses.asdict(agent.config).items()
                       if k != "budget"}, **settings}
    params = None if agent is None else agent.agent
    config = methods.resolve(m.name, domain, budget=budget, agent=params, **settings)
    if config.budget > MAX_BUDGET:
        raise CatchjaxError(
            f"budget {config.budget} is more evaluations than an ask/tell search keeps "
            f"(at most {MAX_BUDGET:,}); every proposal is saved after each step")
    return config, params


def _agent_of(agent, m: Method, domain: Domain, budget, settings):
    """(where the agent came from, the TrainedAgent or None), checked against the method
    and the domain; a method that needs an agent and has none is refused."""
    source = None
    if isinstance(agent, (str, Path)):
        source = {"path": str(Path(agent).absolute()),
                  "manifest_sha256": checkpoints.read_manifest(agent).get("manifest_sha256")}
        agent = checkpoints.load_agent(agent, method=m.name, budget=budget, **settings)
    if agent is None:
        if m.learner is not None and m.learner.requires_agent:
            raise CatchjaxError(
                f"{m.name} starts from a trained agent: pass agent= (a checkpoint path or "
                f"catchjax.runs.agent.train's result), or --init CHECKPOINT, trained on the "
                f"{domain.space.name} space (e.g. `catchjax train --method {m.name} "
                f"--benchmark ...`); or search from scratch (catch-sfs)")
        return None, None
    if not isinstance(agent, TrainedAgent):
        raise CatchjaxError(f"agent must be a checkpoint path or a TrainedAgent (catchjax.runs."
                            f"agent.train's result), got {type(agent).__name__}")
    if agent.method != m.name:
        raise CatchjaxError(f"the agent is a {agent.method} agent, not one for {m.name}")
    L, K = domain.space.n_decisions, domain.space.n_choices
    if (agent.n_decisions, agent.n_choices) != (L, K) or (
            agent.space and agent.space != domain.space.name):
        raise CatchjaxError(
            f"the agent was trained on the {agent.space or '?'} space "
            f"({agent.n_decisions} x {agent.n_choices}), the search is over "
            f"{domain.name} ({L} x {K}): its decisions mean other things there")
    return source, agent


def _differences(search: AskTell, budget, seed, agent, settings: dict,
                 objectives=None) -> list[str]:
    """What differs between these arguments and those ``search`` was started with."""
    differ = []
    if objectives is not None and multi.check_objectives(objectives) != search.objectives:
        differ.append(f"objectives {[o.to_json() for o in multi.check_objectives(objectives)]}"
                      f" (it has {[o.to_json() for o in search.objectives] or 'none'})")
    if budget is not None and budget != search.config.budget:
        differ.append(f"budget {budget} (it has {search.config.budget})")
    if seed is not None and seed != search.seed:
        differ.append(f"seed {seed} (it has {search.seed})")
    for key, value in settings.items():
        if key == "budget":
            raise CatchjaxError("the budget is --budget / budget=, not a setting")
        if not hasattr(search.config, key):
            raise CatchjaxError(f"{search.method} has no setting {key!r}; settings: "
                                f"{', '.join(methods.setting_names(search.method))}")
        hint = typing.get_type_hints(type(search.config))[key]
        parsed = methods.parse_value(search.method, key, hint, value)
        if parsed != getattr(search.config, key):
            differ.append(f"{key}={value} (it has {getattr(search.config, key)})")
    if agent is not None:
        recorded = (search.agent_source or {}).get("path")
        given = str(Path(agent).absolute()) if isinstance(agent, (str, Path)) else None
        if given is None or given != recorded:
            differ.append(f"agent {agent} (it has {recorded or 'none'})")
    return differ
