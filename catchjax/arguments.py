"""Checks of what a user typed that need no JAX: counts and seeds, and the names of the
method, benchmark, task and protocol. The command line runs them first, so a typo is
answered in a tenth of a second instead of after JAX's import (about 1.5 s)."""

from __future__ import annotations

import os
import sys

import numpy as np

from catchjax.errors import CatchjaxError

INT32_MAX = 2**31 - 1  # seeds and trial indices are int32 on the device

# The methods catchjax registers itself (:mod:`catchjax.methods`, in its order) and their
# aliases; a test keeps the two in step.
BUILTIN_METHODS = ("random", "rea", "ls", "bananas", "nsga", "reinforce", "catch-meta",
                   "catch-zero",
                   "catch-random", "catch-oracle", "catch-sfs", "catch-sfs-zero",
                   "catch-sfs-random", "dqn")
ALIASES = {"rs": "random", "random-search": "random", "evolution": "rea",
           "local-search": "ls"}


def check_run(trials, budget, seed) -> None:
    """Refuse counts and seeds that cannot run, before anything compiles (``budget``
    None: the method's own)."""
    for name, value in (("trials", trials), ("budget", budget)):
        if name == "budget" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise CatchjaxError(f"{name} must be a positive integer, got {value!r}")
        if value > INT32_MAX:
            raise CatchjaxError(f"{name} must be at most {INT32_MAX:,}, got {value:,}")
    check_seed(seed)


# Bytes a sweep holds per (trial, evaluation) at its end: each chunk's rows and rewards,
# their concatenation, the summary's best-so-far index and reward, and 4 per report value.
_BYTES_PER_STEP = 4 * 4 + 4 * 2


def memory_estimate(trials: int, budget: int, n_report: int = 3) -> int:
    """Bytes of result arrays a sweep of ``trials`` x ``budget`` holds at its end."""
    return trials * budget * (_BYTES_PER_STEP + 4 * n_report)


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(trials: int, budget: int | None, n_report: int = 3,
                 method: str | None = None) -> None:
    """Refuse, before anything compiles, a sweep whose results cannot fit in this
    machine's memory: it would compute for minutes and then die out of memory."""
    have = physical_memory()
    if budget is None or have is None:
        return
    need = memory_estimate(trials, budget, n_report)
    if need > have:
        raise CatchjaxError(
            f"{trials:,} trials x budget {budget:,}{' of ' + method if method else ''} "
            f"would hold about {need / 2**30:,.1f} GB of results in memory, more than this "
            f"machine's {have / 2**30:,.1f} GB; lower --trials or --budget (or split the "
            f"trials over several sweeps with different --seed)")


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise CatchjaxError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed <= INT32_MAX:
        raise CatchjaxError(f"seed must be in 0..{INT32_MAX:,} (an int32), got {seed:,}")


def check_names(method: str | None, benchmark: str | None = None, task: str | None = None,
                protocol: str | None = None) -> None:
    """Unknown method, benchmark, task or protocol names, refused without importing JAX.
    Once the method registry is loaded (a program that registered methods of its own),
    it is the registry that judges the method's name."""
    from catchjax.benchmarks import catalog

    if method is not None and "catchjax.methods" not in sys.modules and \
            ALIASES.get(method, method) not in BUILTIN_METHODS:
        raise CatchjaxError(f"unknown method {method!r}; methods: {', '.join(BUILTIN_METHODS)}")
    if benchmark is None:
        return
    info = catalog.benchmark_info(benchmark)
    if task is not None:  # a sweep may name its columns instead (checked with the task)
        info.named_task(task, protocol)
    else:
        info.task_defaults(protocol)
