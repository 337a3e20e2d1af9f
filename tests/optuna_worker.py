"""One optuna worker process for tests/test_optuna.py: joins a study in STORAGE and runs
TRIALS trials of a CatchjaxSampler on the synthetic NB201 table. With KILL_AT, the
process kills itself (SIGKILL) in the middle of its KILL_AT-th objective call, leaving
that trial running, as a crashed machine would.

    python tests/optuna_worker.py STORAGE STUDY METHOD BUDGET TRIALS [KILL_AT]
"""

import os
import signal
import sys
import time

import numpy as np
import optuna

from catchjax import make_task
from catchjax.integrations.optuna import CatchjaxSampler


def main(storage, name, method, budget, trials, kill_at=None):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = make_task("synthetic-nb201", "cifar10")
    reward = np.asarray(task.arrays.reward)  # one transfer, not one per row
    table = {task.table.arch_str[r]: float(reward[r]) for r in np.flatnonzero(task.searchable)}
    sampler = CatchjaxSampler(method, "nb201", budget=budget, seed=0)
    if storage.startswith("journal:"):  # optuna's journal file storage
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(storage[len("journal:"):]))
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    calls = 0

    def objective(trial):
        nonlocal calls
        calls += 1
        sampler.suggest(trial)
        if kill_at is not None and calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.01 * (trial.number % 3))  # interleave the workers
        return table[sampler.arch(trial.params)]

    study.optimize(objective, n_trials=trials)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]) if len(a) > 5 else None)
