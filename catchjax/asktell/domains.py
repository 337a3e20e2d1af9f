"""What an ask/tell search proposes from: a **domain**, the architectures of a space or a
table with their masks and neighbours and no rewards (the rewards come from outside).

A domain is what a method's config validates against (``config.validate(domain)``, as
it validates against a table's task): its ``arrays``, ``space``, ``name`` and
``n_searchable``. Domains are named so that a saved search can rebuild its own: a space
(``nb201``, ``transnas-micro``, ``transnas-macro``, ``residual``), ``table:BENCHMARK/TASK``
or ``categorical:{JSON}`` (a declared space, :mod:`catchjax.benchmarks.categorical`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from catchjax.benchmarks import spaces
from catchjax.benchmarks.tasks import Task, TaskArrays, make_task
from catchjax.errors import CatchjaxError


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
        except RecursionError:  # Python's parser gives up on arrays nested ~1,000 deep
            raise CatchjaxError(f"space file {path} nests its lists or objects too deep to "
                                f"be a space (a space is a dict of decisions, each a flat "
                                f"list of choices)") from None
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


def as_domain(domain) -> Domain:
    """A :class:`Domain` from what a user may pass: a name (:func:`domain_by_name`), a
    declared space (a dict of decisions) or a Domain."""
    if isinstance(domain, (str, os.PathLike)):
        return domain_by_name(str(domain))
    if isinstance(domain, dict):  # a declared space
        return categorical_domain(domain)
    if not isinstance(domain, Domain):
        raise CatchjaxError(
            f"domain must be a space name (nb201, transnas-micro, transnas-macro, "
            f"residual, table:BENCHMARK/TASK), a declared space (a dict of decisions or "
            f"a .json file) or a Domain, got {type(domain).__name__}"
        )
    return domain
