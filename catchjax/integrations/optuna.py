"""Any catchjax method as an optuna sampler: ``CatchjaxSampler("rea", "nb201")``.

A study is one catchjax search, and every worker rebuilds it the same way from the
study's storage, so workers on many machines (optuna's RDB or journal storage) share it
without sharing anything else. The rule that makes this so:

* **Trial numbers order the search.** The proposal of trial ``n`` is the method's next
  proposal after the proposals of trials ``0 .. n-1`` (each asked in turn) and the
  results those trials' samplers had told before asking. Each proposal records, in the
  trial's system attribute ``catchjax``, its architecture and the trials whose results
  were told just before it (``{"source", "arch", "told"}``), so a worker that joins late
  replays the same sequence of
  asks and tells (:class:`~catchjax.asktell.search.AskTell`, in memory) and reaches the
  same state; a replayed proposal that comes out other than recorded (another catchjax,
  jax or setting on that worker) is an error that says so.
* **Waiting, not guessing.** A trial whose sampler has not recorded its proposal yet is
  waited for (``wait_timeout``) while it runs; a trial that finished without a record
  (enqueued by hand, or its worker died before sampling) is not part of the search.
* **Running elsewhere.** A method that must hear rewards before it proposes again
  (local search one network at a time, BANANAS per round) gives a worker that asks
  meanwhile a random network that no trial has been given (its record's source says
  ``random``); such trials are in the study, not in the method's state. So are trials
  after the method's budget.
* **Failed and pruned trials** are told as ``failed_reward`` (default: the lowest reward
  told before them, 0 before any), as ask/tell is told a finite low reward for a run
  that failed; a minimized study's values are negated into rewards.

Parameters are the space's decisions: a declared space's own names and choices (a dict
``{name: [choices]}``, or optuna ``CategoricalDistribution``\\ s), or for a catchjax
space (``"nb201"``, ``"transnas-micro"``, ``"residual"``) ``decision_0 ..`` with the
space's operation names. The objective suggests them with ``trial.suggest_categorical``
(:meth:`CatchjaxSampler.suggest` does it for all of them); a parameter the sampler does
not know is sampled at random, with a warning once.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np

from catchjax.errors import CatchjaxError

try:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.samplers import BaseSampler, RandomSampler
    from optuna.study import StudyDirection
    from optuna.trial import TrialState
except ImportError:  # pragma: no cover - the message is what is tested
    raise CatchjaxError("catchjax.integrations.optuna needs optuna: pip install "
                        "'catchjax[optuna]' (or pip install optuna)") from None

__all__ = ["CatchjaxSampler"]

# the system attribute of a trial with its proposal: {"source", "arch", "told"}, written
# in one call so that no worker ever reads half a record
ATTR = "catchjax"


def _space(space):
    """``(domain, names, choices)``: the catchjax domain of ``space`` and its parameters."""
    from catchjax.asktell.domains import as_domain, categorical_domain

    if isinstance(space, dict) and space and all(
            isinstance(d, optuna.distributions.BaseDistribution) for d in space.values()):
        bad = [n for n, d in space.items() if not isinstance(d, CategoricalDistribution)]
        if bad:
            raise CatchjaxError(f"catchjax searches categorical decisions; {', '.join(bad)} "
                                f"{'is' if len(bad) == 1 else 'are'} not a "
                                f"CategoricalDistribution (discretize it into choices)")
        space = {n: list(d.choices) for n, d in space.items()}
    domain = categorical_domain(space) if isinstance(space, dict) else as_domain(space)
    if domain.spec is not None:
        decisions = domain.spec["decisions"]
        return domain, list(decisions), [tuple(c) for c in decisions.values()]
    names = [f"decision_{i}" for i in range(domain.space.n_decisions)]
    return domain, names, [tuple(domain.space.choice_names)] * len(names)


class CatchjaxSampler(BaseSampler):
    """A catchjax method proposing every trial of an optuna study (see the module doc).

    ``method``: any registered method (``random``, ``rea``, ``ls``, ``bananas``,
    ``reinforce``, ``catch-sfs``, ``catch-meta`` with ``agent=``, one of your own);
    ``space``: a catchjax space name, a declared space ``{name: [choices]}`` or a dict of
    optuna ``CategoricalDistribution``; ``budget``, ``seed``, ``agent`` and ``settings``
    as in :meth:`catchjax.AskTell.start` (``seed`` also seeds the random fallbacks)."""

    def __init__(self, method: str, space, *, budget: int | None = None, seed: int = 0,
                 agent=None, failed_reward: float | None = None, wait_timeout: float = 120.0,
                 **settings):
        from catchjax.asktell.search import AskTell

        # what a pickled sampler keeps (Ray Tune checkpoints its searcher by pickling it):
        # the arguments; the search is rebuilt from them and replayed from the study
        self._arguments = {"method": method, "space": space, "budget": budget, "seed": seed,
                           "agent": agent, "failed_reward": failed_reward,
                           "wait_timeout": wait_timeout, **settings}
        self.domain, self.names, self.choices = _space(space)
        self.distributions = {n: CategoricalDistribution(c)
                              for n, c in zip(self.names, self.choices)}
        if failed_reward is not None and not np.isfinite(failed_reward):
            raise CatchjaxError(f"failed_reward must be a finite number, got {failed_reward!r}")
        if not 0 < wait_timeout < float("inf"):
            raise CatchjaxError(f"wait_timeout is seconds > 0, got {wait_timeout!r}")
        self.failed_reward, self.wait_timeout, self.seed = failed_reward, wait_timeout, seed
        # the search starts here, so a wrong method, budget or setting fails at once
        self.search = AskTell.start(method, self.domain, budget=budget, seed=seed, agent=agent,
                                    **settings)
        self._next = 0  # trials below this number are replayed
        self._proposal = {}  # trial number -> the search's proposal id
        self._told: set[int] = set()
        self._lowest: float | None = None
        self._random = RandomSampler(seed=seed)
        self._warned: set[str] = set()

    def __getstate__(self) -> dict:
        return dict(self._arguments)

    def __setstate__(self, arguments: dict) -> None:
        self.__init__(**arguments)

    # -- optuna's sampler interface -------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict:
        return dict(self.distributions)

    def sample_relative(self, study, trial, search_space) -> dict:
        if not search_space:
            return {}
        if len(study.directions) > 1:
            raise CatchjaxError("CatchjaxSampler searches one objective; this study has "
                                f"{len(study.directions)}")
        self._replay(study, trial.number)
        told = self._tell_finished(study, trial.number)
        row, source = self._propose(study, trial.number)
        record = {"source": source, "arch": self.domain.describe(row)["arch"], "told": told}
        study._storage.set_trial_system_attr(trial._trial_id, ATTR, record)
        self._next = trial.number + 1
        return self._params(row)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name not in self._warned:
            self._warned.add(param_name)
            warnings.warn(f"CatchjaxSampler does not search {param_name!r} (not one of the "
                          f"space's decisions: {', '.join(self.names)}); it is sampled at "
                          f"random", stacklevel=2)
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # -- helpers for an objective ---------------------------------------------------------
    def suggest(self, trial) -> dict:
        """Every decision suggested on ``trial`` (the proposal): ``{name: choice}``."""
        return {n: trial.suggest_categorical(n, list(c))
                for n, c in zip(self.names, self.choices)}

    def arch(self, params: dict) -> str:
        """The catchjax architecture string of a trial's parameters."""
        return self.domain.describe(self._row(params))["arch"]

    def replay(self, study) -> dict:
        """Rebuild the search from every recorded proposal of ``study`` (as a worker that
        joins late does) and count the trials by source; raises if a replayed proposal is
        not the one recorded. A fresh sampler shows that a study is the method's own
        ask/tell sequence: ``CatchjaxSampler(...).replay(study)``."""
        trials = study.get_trials(deepcopy=False)
        self._replay(study, len(trials))
        sources = [t.system_attrs.get(ATTR, {}).get("source", "not sampled by catchjax")
                   for t in trials]
        return {"method": sources.count("method"),
                "random": sum(s.startswith("random") for s in sources),
                "other": sum(s == "not sampled by catchjax" for s in sources)}

    # -- the search, rebuilt from the storage ---------------------------------------------
    def _replay(self, study, upto: int) -> None:
        """Apply the recorded proposals of trials ``self._next .. upto - 1`` in order."""
        for number in range(self._next, upto):
            record = self._recorded(study, number)
            if record is None:  # not part of the search
                self._next = number + 1
                continue
            for j in record["told"]:  # a random fallback's sampler told some too
                self._tell(study, j)
            if record["source"] == "method":
                asked = self._ask()
                if asked is None or self.domain.describe(asked[1])["arch"] != record["arch"]:
                    raise CatchjaxError(
                        f"trial {number}'s recorded proposal {record['arch']!r} is not "
                        f"what this worker's {self.search.method} proposes in its place; the "
                        f"workers differ (catchjax, jax, method settings or seed): give them "
                        f"the same")
                self._proposal[number] = asked[0]
            self._next = number + 1

    def _recorded(self, study, number: int) -> dict | None:
        """Trial ``number``'s catchjax record, waiting while it runs without one."""
        trial = self._trial(study, number)
        deadline = time.monotonic() + self.wait_timeout
        while ATTR not in trial.system_attrs and trial.state == TrialState.RUNNING:
            if time.monotonic() > deadline:
                raise CatchjaxError(
                    f"trial {number} has run {self.wait_timeout:g} s without recording its "
                    f"proposal (its worker may have died while sampling); fail it "
                    f"(study.tell({number}, state=optuna.trial.TrialState.FAIL)) or give a "
                    f"longer wait_timeout")
            time.sleep(0.02)
            trial = self._trial(study, number)
        return trial.system_attrs.get(ATTR)

    @staticmethod
    def _trial(study, number: int):
        storage = study._storage
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(
            study._study_id, number))

    def _tell_finished(self, study, below: int) -> list[int]:
        """Tell the method's finished, untold trials below ``below`` (in number order)."""
        told = []
        trials = study.get_trials(deepcopy=False)  # one read of the storage
        for number in sorted(self._proposal):
            if number < below and number not in self._told and \
                    trials[number].state.is_finished():
                self._tell(study, number, trials[number])
                told.append(number)
        return told

    def _tell(self, study, number: int, trial=None) -> None:
        trial = self._trial(study, number) if trial is None else trial
        if trial.state == TrialState.COMPLETE and np.isfinite(trial.value):
            reward = float(trial.value)
            if study.direction == StudyDirection.MINIMIZE:
                reward = -reward
        else:  # failed, pruned, or a value that is no number: a low reward, as ask/tell
            reward = self.failed_reward if self.failed_reward is not None else (
                0.0 if self._lowest is None else self._lowest)
        self.search.tell([self._proposal[number]], [reward])
        self._lowest = reward if self._lowest is None else min(self._lowest, reward)
        self._told.add(number)

    def _ask(self):
        """``(proposal id, row)`` of the method's next proposal, or None when it must hear
        rewards first or its budget is spent."""
        proposals = self.search.ask(1)
        if not proposals:
            return None
        p = proposals[0]
        return p["id"], self._row_of_actions(p["actions"])

    def _propose(self, study, number: int) -> tuple[int, str]:
        asked = self._ask()
        if asked is not None:
            self._proposal[number] = asked[0]
            return asked[1], "method"
        # the method waits for rewards (or is done): a network no trial has been given
        given = {t.system_attrs.get(ATTR, {}).get("arch")
                 for t in study.get_trials(deepcopy=False)}
        rng = np.random.default_rng([self.seed, number])
        for row in rng.permutation(len(self.domain.actions)):
            if self.domain.describe(int(row))["arch"] not in given:
                return int(row), f"random ({self.search.why_not_more()})"
        return int(rng.integers(len(self.domain.actions))), "random (every network given)"

    def _params(self, row: int) -> dict:
        actions = self.domain.actions[row]
        return {n: c[int(a)] for n, c, a in zip(self.names, self.choices, actions)}

    def _row_of_actions(self, actions) -> int:
        rows = np.flatnonzero((self.domain.actions == np.asarray(actions)).all(axis=1))
        return int(rows[0])

    def _row(self, params: dict) -> int:
        actions = [list(map(json.dumps, c)).index(json.dumps(params[n]))
                   for n, c in zip(self.names, self.choices)]
        return self._row_of_actions(actions)
