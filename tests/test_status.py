"""Status lines while a command compiles, trains or runs one long call (catchjax.runs.status;
issue 22, item 2)."""

from __future__ import annotations

import io
import time

import numpy as np

from catchjax.runs import status, sweeps
from tests.helpers import SWEEP, _run


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_at_the_start_and_one_at_the_end():
    out = io.StringIO()
    with status.working("compiling the rea search", stream=out):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0] == "compiling the rea search …"
    assert lines[1].startswith("compiling the rea search: done in ")
    out = io.StringIO()
    with status.working("compiling", stream=out) as shown:
        shown["done"] = "already compiled in this process"
    assert out.getvalue().splitlines()[-1] == "compiling: already compiled in this process"
    silent = io.StringIO()
    with status.working("compiling", enabled=False, stream=silent):
        pass
    assert silent.getvalue() == ""


def test_a_terminal_sees_the_seconds_count():
    out = _Terminal()
    with status.working("training", stream=out, every=0.02):
        time.sleep(0.15)
    text = out.getvalue()
    assert text.count("\rtraining … ") >= 2 and text.endswith("\n")
    assert "training: done in 0." in text


def test_progress_on_or_off_gives_the_same_sweep_and_says_what_runs(syn_nb201, capsys,
                                                                    tmp_path):
    quiet = sweeps.sweep("rea", syn_nb201, trials=40, budget=12, seed=2)
    shown = sweeps.sweep("rea", syn_nb201, trials=40, budget=12, seed=2, progress=True)
    np.testing.assert_array_equal(quiet.rows, shown.rows)
    np.testing.assert_array_equal(quiet.rewards, shown.rewards)
    err = capsys.readouterr().err
    assert "compiling the rea search (40 trials per call)" in err
    assert "running 40 trials of rea in one compiled call: done in" in err  # no jumping bar
    args = [a for a in SWEEP if a != "--no-progress"]
    assert _run(*args, "--out", str(tmp_path / "r")) == 0
    err = capsys.readouterr().err
    assert "compiling the random search" in err and "running 3 trials of random" in err
