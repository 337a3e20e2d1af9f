"""catchjax.arguments: what a user typed, checked before JAX is imported or anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from catchjax import arguments
from catchjax.errors import CatchjaxError


def test_counts_and_seeds_are_positive_int32s():
    arguments.check_run(500, 50, 0)
    arguments.check_run(1, None, arguments.INT32_MAX)  # budget None: the method's own
    for trials, budget, seed, words in ((0, 5, 0, "trials must be a positive"),
                                        (True, 5, 0, "trials must be a positive"),
                                        (2, 2**31, 0, "budget must be at most"),
                                        (2, 5, -1, "seed must be in 0.."),
                                        (2, 5, 1.5, "seed must be an integer")):
        with pytest.raises(CatchjaxError, match=words):
            arguments.check_run(trials, budget, seed)


def test_results_that_cannot_fit_in_memory_are_refused_first():
    arguments.check_memory(500, 50)  # the defaults fit anywhere
    arguments.check_memory(10, None)  # the method's own budget: checked once resolved
    assert arguments.memory_estimate(1000, 50, 3) == 1000 * 50 * (24 + 12)
    with pytest.raises(CatchjaxError, match=r"lower --trials or --budget"):
        arguments.check_memory(2**31 - 1, 50)
    with pytest.raises(CatchjaxError, match=r"budget 1,000,000,000 of rea"):
        arguments.check_memory(1, 10**9, method="rea")


def test_names_are_checked_without_jax():
    """In a fresh process (in this one the method registry is loaded and judges names)."""
    arguments.check_names("rs", "nb201", "cifar100")  # an alias
    code = ("import sys; from catchjax import arguments as a; a.check_memory(2, 3); "
            "a.check_run(1, 2, 3); a.check_names('rs', 'nb201', 'cifar100')\n"
            "try:\n    a.check_names('reaa')\nexcept Exception as e:\n    print(e)\n"
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("unknown method 'reaa'") and out[1] == "False"
