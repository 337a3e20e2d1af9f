"""catchjax.methods: a run's config is built and validated in one place, and the budget
lives in the config (issue 18's latent trap: sweep(config) reset it to 50, run_trial
ignored budget and settings)."""

from __future__ import annotations

import pytest

from catchjax import cli, methods, sweeps
from catchjax.errors import CatchjaxError


def test_a_configs_own_budget_and_settings_are_what_runs(syn_nb201):
    config = methods.make_config("rea", 100, population=7)
    result = sweeps.sweep(config, syn_nb201, trials=2, seed=0)
    assert result.rows.shape == (2, 100) and result.config.population == 7
    assert sweeps.sweep(config, syn_nb201, trials=2, budget=30).rows.shape == (2, 30)
    trace = sweeps.run_trial("rea", syn_nb201, budget=40, population=5)
    assert trace.rows.shape == (40,)
    alone = sweeps.run_trial(config, syn_nb201, seed=0, trial=1)
    assert alone.rows.shape == (100,)
    assert list(alone.rows) == list(result.rows[1])  # the sweep's trial 1, as documented
    other = sweeps.run_trial(config, syn_nb201, seed=0, trial=1, population=3)
    assert list(other.rows) != list(alone.rows)  # the setting changed the search
    with pytest.raises(CatchjaxError, match="population"):
        sweeps.run_trial("rea", syn_nb201, budget=20, population=0)


def test_a_sweep_command_builds_and_validates_its_config_once(tmp_path, monkeypatch):
    counts = {"make_config": 0, "validate": 0}
    for name in counts:
        real = getattr(methods, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(methods, name, spy)
    assert cli.main(["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task",
                     "cifar10", "--trials", "3", "--budget", "12", "--set", "population=4",
                     "--no-progress", "--out", str(tmp_path / "o")]) == 0
    assert counts == {"make_config": 1, "validate": 1}


def test_build_keeps_a_config_and_refuses_what_is_not_one():
    config = methods.make_config("random", 9)
    assert methods.build(config) is config
    assert methods.build(config, 12).budget == 12 and methods.build("random").budget == 50
    for bad in (None, 123, methods.make_config):
        with pytest.raises(CatchjaxError, match="method must be"):
            methods.build(bad)
