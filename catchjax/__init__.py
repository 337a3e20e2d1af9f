"""catchjax: reinforcement-learning architecture search on NAS benchmarks, in JAX.

The hot path of every search method is a pure function of (key, task arrays), so a
sweep of hundreds of seeded trials is one compiled, vmapped call.

The names below are imported on first use, so that ``import catchjax.cli`` (and
``catchjax --help``) do not wait for jax.

The package is grouped by job, each group importing only the ones below it (the rule and
the tree: ``docs/contributing.md``). Modules that moved into a group still import by
their first name (``catchjax.sweeps`` is ``catchjax.runs.sweeps``, the same module
object): see ``MOVED``.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from catchjax.errors import CatchjaxError

__version__ = "0.1.0"
__all__ = [
    "CatchjaxError",
    "CostObjective",
    "SweepResult",
    "AskTell",
    "MetaTraining",
    "Task",
    "load_agent",
    "load_agents",
    "load_table",
    "make_task",
    "run_trial",
    "save_agent",
    "save_agents",
    "sweep",
]
_LAZY = {
    "CostObjective": "catchjax.benchmarks.tasks",
    "Task": "catchjax.benchmarks.tasks",
    "make_task": "catchjax.benchmarks.tasks",
    "load_table": "catchjax.benchmarks.tables",
    "SweepResult": "catchjax.runs.results",
    "run_trial": "catchjax.runs.sweeps",
    "sweep": "catchjax.runs.sweeps",
    "AskTell": "catchjax.asktell.search",
    "MetaTraining": "catchjax.asktell.meta",
    "load_agent": "catchjax.store.checkpoints",
    "load_agents": "catchjax.store.checkpoints",
    "save_agent": "catchjax.store.checkpoints",
    "save_agents": "catchjax.store.checkpoints",
}

# first name -> where the module lives now (a package's submodules follow it)
MOVED = {
    "catchjax.agent": "catchjax.runs.agent",
    "catchjax.analysis": "catchjax.runs.analysis",
    "catchjax.batched": "catchjax.runs.batched",
    "catchjax.compile_cache": "catchjax.runs.compile_cache",
    "catchjax.distributed": "catchjax.runs.distributed",
    "catchjax.numerics": "catchjax.runs.numerics",
    "catchjax.progress": "catchjax.runs.progress",
    "catchjax.results": "catchjax.runs.results",
    "catchjax.status": "catchjax.runs.status",
    "catchjax.sweeps": "catchjax.runs.sweeps",
    "catchjax.checkpoints": "catchjax.store.checkpoints",
    "catchjax.locking": "catchjax.store.locking",
    "catchjax.reporting": "catchjax.store.reporting",
    "catchjax.ask_tell": "catchjax.asktell.search",
    "catchjax.meta_ask_tell": "catchjax.asktell.meta",
    "catchjax.runs_report": "catchjax.studies.report",
    "catchjax.shaping": "catchjax.studies.shaping",
    "catchjax.task_relations": "catchjax.studies.task_relations",
    "catchjax.transfer": "catchjax.studies.transfer",
    "catchjax.transfer_plots": "catchjax.studies.transfer_plots",
    "catchjax.baselines": "catchjax.methods.baselines",
    "catchjax.catch": "catchjax.methods.catch",
    "catchjax.dqn": "catchjax.methods.dqn",
}


def _moved_to(name: str):
    """Where ``name`` lives now: catchjax.dqn.learner -> catchjax.methods.dqn.learner."""
    first = ".".join(name.split(".")[:2])  # every moved name is catchjax.<module>
    return MOVED[first] + name[len(first):] if first in MOVED else None


class _FirstNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module by its first name as the very module object it is now (so
    ``isinstance``, monkeypatching and pickles see one module, not a copy)."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("catchjax.") or _moved_to(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(_moved_to(spec.name))
        spec.loader_state = module.__spec__  # the import system overwrites __spec__ next
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(f, _FirstNames) for f in sys.meta_path):
    sys.meta_path.insert(0, _FirstNames())  # before the path finder: never a second copy


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'catchjax' has no attribute {name!r}")
