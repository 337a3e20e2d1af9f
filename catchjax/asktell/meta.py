"""Meta-training whose rewards come from outside: CATCH's Algorithm 1, lines 1-13, through
ask/tell (issue 24; the paper's §4.3 meta-trains on ImageNet sub-datasets it trains
networks on).

``meta = MetaTraining.start(domain, tasks, ...)``, then ``meta.ask(k)`` / ``meta.tell(ids,
rewards)`` until ``meta.done``; ``meta.trained()`` is the agent (a
:class:`~catchjax.core.TrainedAgent` that :func:`catchjax.runs.agent.save_agent` saves and
``catch-meta --init`` adapts). Meta-epoch ``m`` is one search of ``meta_budget`` networks
on the task ``tasks(m, key)`` returns — a JSON-able description the user's trainer reads
from each proposal (e.g. ``{"classes": [1, 4, 7]}``) — carrying the agent (networks and
Adam state) from one meta-epoch to the next, as :func:`catchjax.methods.catch_meta.train`
does on a table. The keys are :func:`catchjax.methods.catch_meta.train`'s, so with
:func:`pool_tasks` and the table's rewards this makes exactly the table meta-training's
proposals and agent.

Each meta-epoch's search is an :class:`~catchjax.asktell.search.AskTell` (in ``epoch-NNNN/`` of
the folder): saved after every ask and tell, driven by several workers at once, resumed
by :meth:`MetaTraining.load`. The folder's manifest ``catchjax-meta.json`` lists the
meta-epochs started and their tasks; a new meta-epoch starts from the final state of the
previous one, so the agent is never stored twice and a crash between two steps loses
nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import jax

from catchjax import methods, safe_io
from catchjax.asktell import checks
from catchjax.asktell.domains import Domain, domain_by_name
from catchjax.asktell.search import AskTell
from catchjax.core import TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.methods import catch
from catchjax.store import folder, provenance

MANIFEST = "catchjax-meta.json"
LOCK = "catchjax-meta.lock"
META_METHODS = ("catch-meta", "catch-zero", "catch-random")

TaskFn = Callable[[int, jax.Array], dict]


def pool_tasks(n_pool: int) -> TaskFn:
    """The table meta-training's task draw (:func:`catchjax.methods.catch_meta.train`, one
    pool column per meta-epoch, uniformly): ``{"pool_task": p}``."""
    if isinstance(n_pool, bool) or not isinstance(n_pool, int) or n_pool < 1:
        raise CatchjaxError(f"the pool needs at least one task, got {n_pool!r}")

    def draw(m: int, key) -> dict:
        return {"pool_task": int(jax.random.randint(key, (), 0, n_pool))}

    return draw


def class_subsets(n_classes: int, low: int, high: int) -> TaskFn:
    """The paper's meta-training tasks (§4.2: a new sub-dataset of 10, 20 or 30 random
    ImageNet classes every meta-epoch): ``{"classes": [...]}``, ``low``..``high`` distinct
    classes of ``n_classes``, sorted, drawn from the meta-epoch's key."""
    if not 1 <= low <= high <= n_classes:
        raise CatchjaxError(f"class subsets need 1 <= low <= high <= classes, got "
                            f"{low}-{high} of {n_classes}")

    def draw(m: int, key) -> dict:
        k_n, k_c = jax.random.split(key)
        n = int(jax.random.randint(k_n, (), low, high + 1))
        chosen = jax.random.choice(k_c, n_classes, (n,), replace=False)
        return {"classes": sorted(int(c) for c in chosen)}

    return draw


def named_tasks(name: str) -> TaskFn:
    """A task generator by name, so that a meta-training started from the command line
    reloads without Python: ``pool:P`` (:func:`pool_tasks`) or ``classes:N:LOW-HIGH``
    (:func:`class_subsets`, e.g. ``classes:10:3-6``)."""
    parts = str(name).split(":")
    try:
        if parts[0] == "pool" and len(parts) == 2:
            return pool_tasks(int(parts[1]))
        if parts[0] == "classes" and len(parts) == 3:
            low, high = (int(x) for x in parts[2].split("-"))
            return class_subsets(int(parts[1]), low, high)
    except ValueError:
        pass
    raise CatchjaxError(f"unknown task generator {name!r}: use pool:P (one of P pool tasks "
                        f"per meta-epoch) or classes:N:LOW-HIGH (LOW..HIGH random classes "
                        f"of N, e.g. classes:10:3-6)")


def _epoch_keys(seed: int, m: int):
    """(task key, search key) of meta-epoch ``m``: :func:`catchjax.methods.catch_meta.train`'s."""
    _, k_loop = jax.random.split(jax.random.key(seed))
    k_task, k_search = jax.random.split(jax.random.fold_in(k_loop, m))
    return k_task, k_search


def _task_of(tasks: TaskFn, seed: int, m: int) -> dict:
    task = tasks(m, _epoch_keys(seed, m)[0])
    if not isinstance(task, dict):
        raise CatchjaxError(f"the task generator must return a dict (a JSON-able "
                            f"description of the task), got {type(task).__name__}")
    try:
        return json.loads(json.dumps(task, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise CatchjaxError(f"the task of meta-epoch {m} is not JSON-able: {exc}") from None


@dataclasses.dataclass
class MetaTraining:
    """A meta-training driven from outside; see the module docstring."""

    method: str
    config: object  # the method's config (its meta_epochs, meta_budget, ...)
    domain: Domain
    seed: int
    tasks: TaskFn
    epochs: list  # one dict per meta-epoch started: {"task": ..., "folder": ...}
    searches: list  # the AskTell of each meta-epoch started (None: not opened yet)
    state_dir: Path | None = None
    lock_timeout: float = folder.DEFAULT_TIMEOUT
    tasks_name: str | None = None  # a named generator (named_tasks), kept in the manifest

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def start(cls, domain: Domain | str, tasks: TaskFn | str, *, method: str = "catch-meta",
              seed: int = 0, state_dir=None, lock_timeout: float = folder.DEFAULT_TIMEOUT,
              **settings) -> MetaTraining:
        """A new meta-training of ``method`` (catch-meta or an ablation) over ``domain``:
        ``meta_epochs`` searches of ``meta_budget`` networks, the task of meta-epoch m
        being ``tasks(m, key)`` (a callable, or a generator's name: :func:`named_tasks`).
        ``settings`` override the method's (e.g. meta_epochs=8).
        ``state_dir``: a new folder to keep it in (crash-safe, resumable)."""
        from catchjax.runs.sweeps import check_seed

        if isinstance(domain, str):
            domain = domain_by_name(domain)
        if not isinstance(domain, Domain):
            raise CatchjaxError(f"domain must be a space name or a Domain, got {domain!r}")
        tasks_name = None
        if isinstance(tasks, str):
            tasks_name, tasks = tasks, named_tasks(tasks)
        if not callable(tasks):
            raise CatchjaxError("tasks must be a callable (meta_epoch, key) -> dict, e.g. "
                                "catchjax.asktell.meta.pool_tasks(P), or a generator's name "
                                "such as classes:10:3-6")
        name = methods.canonical_name(method)
        if name not in META_METHODS:
            raise CatchjaxError(f"meta-training through ask/tell is for {', '.join(META_METHODS)}"
                                f", not {name}")
        check_seed(seed)
        config = methods.build(name, **settings)
        if config.meta_batch != 1 or config.meta_tasks != "pool":
            raise CatchjaxError("through ask/tell a meta-epoch is one search on the task "
                                "your generator gives (meta_batch=1; meta_tasks is the "
                                "generator's job)")
        config.validate(domain)
        lock_timeout = folder.timeout_value(lock_timeout)
        path = None
        if state_dir is not None:
            path = Path(state_dir).expanduser().resolve()
            if path.exists():
                raise CatchjaxError(f"{path} already exists; continue it with "
                                    f"MetaTraining.load, or pick a new folder")
            safe_io.check_output_dir(path, False, owned=set(), marker=MANIFEST,
                                     what="meta-training")
        meta = cls(name, config, domain, seed, tasks, [], [], path, lock_timeout, tasks_name)
        if path is not None:
            path.mkdir(parents=True)
            meta._write_manifest()
        return meta

    @classmethod
    def load(cls, state_dir, tasks: TaskFn | None = None,
             lock_timeout: float = folder.DEFAULT_TIMEOUT) -> MetaTraining:
        """Continue the meta-training in ``state_dir``; ``tasks`` must be the generator it
        was started with (the tasks it recorded are checked against it); a named one
        (:func:`named_tasks`) is recorded and need not be given."""
        path = Path(state_dir).expanduser().resolve()
        if not path.is_dir():
            raise CatchjaxError(f"meta-training folder {path} does not exist")
        if not (path / MANIFEST).is_file():  # refused before a lock file is made there
            raise CatchjaxError(f"{path} is not a meta-training folder (no {MANIFEST})")
        with folder.hold(path / LOCK, timeout=lock_timeout,
                         what=f"meta-training folder {path}", read_only_ok=True):
            meta = cls._read(path)
        tasks_name = meta.get("tasks")
        if tasks is None:
            if tasks_name is None:
                raise CatchjaxError(f"{path} was started with a task generator of your own: "
                                    f"pass it (MetaTraining.load(folder, tasks))")
            tasks = named_tasks(tasks_name)
        name = methods.canonical_name(meta["method"])
        config = methods.restore(name, meta["config"])
        domain = domain_by_name(meta["domain"])
        if domain.fingerprint != meta.get("domain_fingerprint"):
            raise CatchjaxError(f"{path}: the architectures of {meta['domain']} differ from "
                                f"those it was started on; start a new meta-training")
        out = cls(name, config, domain, int(meta["seed"]), tasks, list(meta["epochs"]),
                  [None] * len(meta["epochs"]), path, lock_timeout, tasks_name)
        for m, epoch in enumerate(out.epochs):
            if _task_of(tasks, out.seed, m) != epoch["task"]:
                raise CatchjaxError(
                    f"{path}: meta-epoch {m} was on task {epoch['task']}, but the task "
                    f"generator given now makes {_task_of(tasks, out.seed, m)}: pass the "
                    f"generator the meta-training was started with")
        return out

    @staticmethod
    def _read(path: Path) -> dict:
        if not (path / MANIFEST).is_file():
            raise CatchjaxError(f"{path} is not a meta-training folder (no {MANIFEST})")
        meta = folder.read_json_object(path / MANIFEST)
        if not folder.is_sealed(meta):
            raise CatchjaxError(f"{path / MANIFEST} was changed after it was written (its "
                                f"checksum does not match); restore a copy")
        return meta

    def _write_manifest(self) -> None:

        meta = {"format": 1, "kind": "catchjax meta-training", "method": self.method,
                "config": dataclasses.asdict(self.config), "domain": self.domain.name,
                "domain_fingerprint": self.domain.fingerprint, "seed": self.seed,
                "tasks": self.tasks_name, "epochs": self.epochs,
                **provenance.record()}
        folder.write_manifest(self.state_dir / MANIFEST, meta, indent=1)

    # -- where it stands -------------------------------------------------------------------
    @property
    def meta_budget(self) -> int:
        return self.config.meta_budget

    def _search(self, m: int) -> AskTell:
        """Meta-epoch ``m``'s search, opened (or created: its start is deterministic)."""
        if self.searches[m] is None:
            folder = self.state_dir / self.epochs[m]["folder"]
            if (folder / "catchjax-search.json").exists():
                self.searches[m] = AskTell.load(folder, lock_timeout=self.lock_timeout)
            else:
                self.searches[m] = self._new_search(m, folder)
        return self.searches[m]

    def _agent_before(self, m: int):
        """The agent meta-epoch ``m`` starts from: a fresh one (catch_meta.train's key), or the
        final state of meta-epoch m - 1."""
        if m == 0:
            k_init, _ = jax.random.split(jax.random.key(self.seed))
            L, K = self.domain.space.n_decisions, self.domain.space.n_choices
            return catch.init_agent(self.config, k_init, L, K)
        state = self._search(m - 1).state
        return catch.AgentState(state.params, state.opt_state)

    def _new_search(self, m: int, folder: Path | None) -> AskTell:
        agent = TrainedAgent(self._agent_before(m), self.config, "", "", [], self.seed,
                             self.domain.space.n_decisions, self.domain.space.n_choices,
                             method=self.method, space=self.domain.space.name)
        try:  # an agent carried over, not adapted: no fresh Adam (catch.start_search)
            return AskTell.start(self.method, self.domain, budget=self.meta_budget,
                                 seed=self.seed, agent=agent, state_dir=folder,
                                 key=_epoch_keys(self.seed, m)[1], reset_optimizer=False,
                                 lock_timeout=self.lock_timeout)
        except CatchjaxError:
            if folder is not None and (folder / "catchjax-search.json").exists():
                return AskTell.load(folder, lock_timeout=self.lock_timeout)  # a worker did
            raise

    def _epoch_done(self, m: int) -> bool:
        s = self._search(m)
        return s.n_asked == self.meta_budget and not s.pending

    @property
    def done(self) -> bool:
        return (len(self.epochs) == self.config.meta_epochs
                and self._epoch_done(len(self.epochs) - 1))

    def _refresh(self) -> None:
        if self.state_dir is None:
            return
        meta = self._read(self.state_dir)
        if len(meta["epochs"]) > len(self.epochs):
            self.searches += [None] * (len(meta["epochs"]) - len(self.epochs))
            self.epochs = list(meta["epochs"])
        for m, search in enumerate(self.searches):  # a finished meta-epoch never changes
            if search is not None and not (search.n_asked == self.meta_budget
                                           and not search.pending):
                self.searches[m] = AskTell.load(search.state_dir,
                                                lock_timeout=self.lock_timeout)

    def _lock(self):
        if self.state_dir is None:
            import contextlib

            return contextlib.nullcontext()
        return folder.hold(self.state_dir / LOCK, timeout=self.lock_timeout,
                           what=f"meta-training folder {self.state_dir}")

    # -- steps ---------------------------------------------------------------------------
    def ask(self, k: int = 1) -> list[dict]:
        """Up to ``k`` proposals of the current meta-epoch, each ``{"id", "meta_epoch",
        "task", "arch", "actions"}``; a new meta-epoch starts (on its task, from the agent
        the last one left) once every network of the last one is told."""
        with self._lock():
            self._refresh()
            if not self.epochs or (self._epoch_done(len(self.epochs) - 1)
                                   and len(self.epochs) < self.config.meta_epochs):
                m = len(self.epochs)
                self.epochs.append({"task": _task_of(self.tasks, self.seed, m),
                                    "folder": f"epoch-{m:04d}"})
                self.searches.append(None)
                if self.state_dir is not None:
                    self._write_manifest()  # first: the search's start is deterministic
                else:
                    self.searches[m] = self._new_search(m, None)
            m = len(self.epochs) - 1
            search = self._search(m)
        return self._numbered(m, search.ask(k))

    def _numbered(self, m: int, proposals: list[dict]) -> list[dict]:
        """Meta-epoch ``m``'s proposals as the meta-training numbers them, with the task."""
        return [{"id": m * self.meta_budget + p["id"], "meta_epoch": m,
                 "task": self.epochs[m]["task"], **{k: v for k, v in p.items() if k != "id"}}
                for p in proposals]

    def pending_proposals(self) -> list[dict]:
        """The current meta-epoch's proposals still waiting for a reward, as :meth:`ask`
        returned them (to hand them out again after the jobs training them were lost)."""
        with self._lock():
            self._refresh()
            if not self.epochs:
                return []
            m = len(self.epochs) - 1
            search = self._search(m)
        return self._numbered(m, search.pending_proposals())

    def why_not_more(self) -> str:
        if self.done:
            return f"meta-training is done ({self.config.meta_epochs} meta-epochs)"
        if not self.epochs:
            return ""
        m = len(self.epochs) - 1
        search = self._search(m)
        if search.pending and (search.n_asked == self.meta_budget or search.ready() == 0):
            waiting = [m * self.meta_budget + i for i in search.pending]  # as ask numbers them
            then = (f"the next one starts ({self.config.meta_epochs - m - 1} meta-epochs to "
                    f"go)" if search.n_asked == self.meta_budget else "it proposes more")
            return (f"meta-epoch {m} waits for the rewards of proposals {waiting} before "
                    f"{then}; `catchjax meta-ask --pending` hands them out again")
        return search.why_not_more()

    def tell(self, ids, rewards, *, extras=None) -> None:
        """The rewards of proposals ``ids`` (as :meth:`ask` numbered them: meta-epoch m's
        proposal j is m * meta_budget + j), all of one meta-epoch still running."""
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise CatchjaxError(f"ids must be a list of proposal ids, got {ids!r}")
        ids = [checks.proposal_id(i) for i in ids]  # 0.7 is refused, never truncated to 0
        if not ids:
            raise CatchjaxError("tell needs at least one result")
        epochs = {i // self.meta_budget for i in ids}
        if len(epochs) != 1:
            raise CatchjaxError(f"one tell is for the proposals of one meta-epoch; these are "
                                f"of meta-epochs {sorted(epochs)}")
        m = epochs.pop()
        if self.state_dir is not None:
            self._refresh()
        if not 0 <= m < len(self.epochs):
            raise CatchjaxError(f"proposals {ids} were never asked")
        self._search(m).tell([i - m * self.meta_budget for i in ids], rewards, extras=extras)

    def trained(self) -> TrainedAgent:
        """The meta-trained agent, once :attr:`done`; its ``pool`` lists the meta-epochs'
        tasks (as JSON text)."""
        if self.state_dir is not None:
            self._refresh()
        if not self.done:
            told = sum(sum(p["reward"] is not None for p in self._search(m).log)
                       for m in range(len(self.epochs)))
            raise CatchjaxError(
                f"meta-training is not done: {told} of "
                f"{self.config.meta_epochs * self.meta_budget} networks told")
        state = self._search(len(self.epochs) - 1).state
        return TrainedAgent(catch.AgentState(state.params, state.opt_state), self.config,
                            f"ask/tell:{self.domain.name}", "", [json.dumps(e["task"])
                                                                for e in self.epochs],
                            self.seed, self.domain.space.n_decisions,
                            self.domain.space.n_choices, method=self.method,
                            space=self.domain.space.name)

    def history(self) -> list[dict]:
        """Every proposal of every meta-epoch, one row each (AskTell.history's columns
        plus meta_epoch and task)."""
        rows = []
        for m, epoch in enumerate(self.epochs):
            for row in self._search(m).history():
                rows.append({**row, "id": m * self.meta_budget + row["id"], "meta_epoch": m,
                             "task": json.dumps(epoch["task"])})
        return rows

    def __repr__(self) -> str:
        return (f"MetaTraining({self.method} on {self.domain.name}, seed {self.seed}, "
                f"meta-epoch {len(self.epochs)} of {self.config.meta_epochs}"
                + (f", folder {self.state_dir}" if self.state_dir else "") + ")")

