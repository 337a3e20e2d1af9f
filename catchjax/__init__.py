"""catchjax: reinforcement-learning architecture search on NAS benchmarks, in JAX.

The hot path of every search method is a pure function of (key, task arrays), so a
sweep of hundreds of seeded trials is one compiled, vmapped call.
"""

from catchjax.benchmarks.tables import load_table
from catchjax.benchmarks.tasks import CostObjective, Task, make_task
from catchjax.errors import CatchjaxError
from catchjax.sweeps import SweepResult, run_trial, sweep

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
