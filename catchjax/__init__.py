"""catchjax: reinforcement-learning architecture search on NAS benchmarks, in JAX.

The hot path of every search method is a pure function of (key, task arrays), so a
sweep of hundreds of seeded trials is one compiled, vmapped call.

The names below are imported on first use, so that ``import catchjax.cli`` (and
``catchjax --help``) do not wait for jax.
"""

from catchjax.errors import CatchjaxError

__version__ = "0.1.0"
__all__ = [
    "CatchjaxError",
    "CostObjective",
    "SweepResult",
    "Task",
    "load_table",
    "make_task",
    "run_trial",
    "sweep",
]
_LAZY = {
    "CostObjective": "catchjax.benchmarks.tasks",
    "Task": "catchjax.benchmarks.tasks",
    "make_task": "catchjax.benchmarks.tasks",
    "load_table": "catchjax.benchmarks.tables",
    "SweepResult": "catchjax.results",
    "run_trial": "catchjax.sweeps",
    "sweep": "catchjax.sweeps",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'catchjax' has no attribute {name!r}")
