"""catchjax.methods: a run's config is built and validated in one place, and the budget
lives in the config (issue 18's latent trap: sweep(config) reset it to 50, run_trial
ignored budget and settings)."""

from __future__ import annotations

import json

import pytest

from catchjax import cli, methods
from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.runs import agent as agents
from catchjax.runs import sweeps
from tests.helpers import SWEEP, _run


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


def test_replace_no_means_no(tmp_path):
    out = tmp_path / "rs"
    assert _run(*SWEEP, "--out", str(out), "--set", "replace=no") == 0
    assert json.loads((out / "summary.json").read_text())["config"]["replace"] is False
    out2 = tmp_path / "rs2"
    assert _run(*SWEEP, "--out", str(out2), "--set", "replace=yes") == 0
    assert json.loads((out2 / "summary.json").read_text())["config"]["replace"] is True


@pytest.mark.parametrize("method,setting,words", [
    ("catch-sfs", dict(learning_rate=0.0), "learning_rate"),
    ("catch-sfs", dict(learning_rate=float("nan")), "learning_rate"),
    ("catch-sfs", dict(per_fraction=1.5), "per_fraction"),
    ("catch-sfs", dict(per_fraction=0.0), "per_fraction"),
    ("catch-sfs", dict(updates_per_epoch=0), "updates_per_epoch"),
    ("catch-sfs", dict(epsilon_start=1.5), "epsilon_start"),
    ("catch-sfs", dict(epsilon_end=-0.1), "epsilon_end"),
    ("catch-sfs", dict(ppo_clip=-1.0), "ppo_clip"),
    ("catch-sfs", dict(beta_kl=-0.1), "beta_kl"),
    ("reinforce", dict(learning_rate=float("inf")), "learning_rate"),
    ("reinforce", dict(baseline_momentum=1.0), "baseline_momentum"),
    ("rea", dict(population=0), "population"),
])
def test_meaningless_settings_are_refused_before_compiling(syn_nb201, method, setting, words,
                                                           no_compile):
    with pytest.raises(CatchjaxError, match=words):
        sweeps.sweep(method, syn_nb201, trials=2, budget=10, **setting)


def test_the_python_api_checks_its_arguments_like_the_cli(tmp_path, no_compile, capsys):
    """Each was a raw traceback or accepted silently (issue 21's second probe); each is
    now one CatchjaxError naming the argument, before anything compiles."""
    import jax

    from catchjax import sweep
    from catchjax.store import checkpoints

    task = tasks.make_task("synthetic-transnas-micro", "jigsaw")
    (tmp_path / "file").write_text("x")
    bad_sweeps = [
        (dict(method=None, task=task), "method must be"),
        (dict(method=123, task=task), "method must be"),
        (dict(method="random", task="nb201"), "task must be a Task"),
        (dict(method="random", task=None), "task must be a Task"),
        (dict(method="random", task=task, devices=[]), "devices is empty"),
        (dict(method="random", task=task, devices=["cpu"]), "must be jax devices"),
        (dict(method="random", task=task, chunk_size=0), "chunk_size"),
        (dict(method="random", task=task, chunk_size=2.5), "chunk_size"),
        (dict(method="random", task=task, progress_dir=tmp_path / "file"), "not a folder"),
        (dict(method="catch-meta", task=task, agent="agent.ckpt"), "do not fit"),
    ]
    for kwargs, words in bad_sweeps:
        with pytest.raises(CatchjaxError, match=words):
            sweep(trials=2, budget=5, **kwargs)
    bad_tasks = [(dict(report=123), "report must be"), (dict(report=[]), "at least one"),
                 (dict(reward=""), "reward must be"), (dict(gamma="2"), "gamma must be"),
                 (dict(cost="latency"), "CostObjective"), (dict(mask_nan="no"), "True or False"),
                 (dict(gamma_normalize="percent"), "goes with gamma")]
    for kwargs, words in bad_tasks:
        with pytest.raises(CatchjaxError, match=words):
            tasks.make_task("synthetic-transnas-micro", "jigsaw", **kwargs)
    with pytest.raises(CatchjaxError, match="checkpoint folder's path"):
        checkpoints.load_agent(None)
    with pytest.raises(CatchjaxError, match="saves a TrainedAgent"):
        checkpoints.save_agent(tmp_path / "a", {"params": 1})
    with pytest.raises(CatchjaxError, match=r"seeds \[1\] appear more than once"):
        agents.train_many("catch-meta", task, seeds=[0, 1, 1])
    with pytest.raises(CatchjaxError, match="candidates .* at most"):
        sweep("catch-sfs", task, trials=2, budget=5, candidates=10**9)
    for extra, words in [(["--gamma-normalize", "percent"], "goes with --gamma"),
                         (["--cost-weight", "-0.1"], "goes with --cost-metric")]:
        assert _run(*SWEEP, "--out", str(tmp_path / "o"), *extra) == 2
        assert words in capsys.readouterr().err
    assert _run(*SWEEP, "--out", str(tmp_path / "o"), "--set", "budget=5") == 2
    assert "not a --set setting" in capsys.readouterr().err
    assert jax.devices()  # the checks compiled nothing (no_compile)


def test_a_methods_own_budget_is_the_default(syn_nb201):
    """Issue 22, item 7: the DQN's config says 11 (one greedy episode); a sweep of it
    without a budget used to run 50."""
    assert methods.build("dqn").budget == 11 == methods.default_budget("dqn")
    assert methods.build("rea").budget == 50
    assert methods.build("dqn", 7).budget == 7
    args = cli.build_parser().parse_args(["sweep", "--method", "dqn", "--benchmark", "b",
                                          "--task", "t", "--out", "o"])
    assert args.budget is None  # left to the method


def test_settings_a_method_ignores_are_not_listed_and_refused_when_set():
    sfs = methods.setting_names("catch-sfs")
    assert "candidates" in sfs and not {"meta_epochs", "meta_budget", "reset_optimizer"} & set(sfs)
    assert "meta_epochs" in methods.setting_names("catch-meta")
    with pytest.raises(CatchjaxError, match="does not use the setting.*meta_epochs.*catch-meta"):
        methods.make_config("catch-sfs", meta_epochs=3)
    # a config carrying the default (e.g. rebuilt from a config object) is fine, and a
    # config read back from a file (an ask/tell folder written before) keeps what it holds
    assert methods.make_config("catch-sfs", meta_epochs=25).meta_epochs == 25
    assert methods.make_config("catch-sfs", saved=True, meta_epochs=3).meta_epochs == 3


def test_from_scratch_catch_does_not_check_meta_training_sizes(syn_nb201):
    assert methods.resolve("catch-sfs", syn_nb201, n_initial=30).n_initial == 30
    with pytest.raises(CatchjaxError, match="and <= meta_budget"):
        methods.build("catch-meta", n_initial=30).validate(syn_nb201)


def test_setting_docs_come_from_the_config_comments():
    docs = methods.setting_docs("catch-sfs")
    assert docs["candidates"].startswith("M: candidates sampled")
    assert "meta_epochs" not in docs
    assert methods.setting_docs("ls")["improvement"].startswith('"best"')
    assert methods.setting_docs("bananas")["ensemble"] == "MLPs in the ensemble (BANANAS: 5)"


def test_methods_command_describes_a_methods_settings(capsys):
    assert _run("methods") == 0
    listing = capsys.readouterr().out
    assert "ls " in listing and "bananas " in listing and "settings:" not in listing
    assert _run("methods", "catch-sfs") == 0
    text = capsys.readouterr().out
    assert "  candidates" in text and "M: candidates sampled" in text
    assert "not used by catch-sfs: meta_epochs, meta_budget" in text
    assert "  meta_epochs" not in text
    assert _run("methods", "nope") == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_catch_defaults_of_issue_32_and_files_saved_before_them():
    """Every CATCH method skips networks it asked (Algorithm 1 re-proposed them); the
    meta-trained ones draw their candidates at a temperature going to 0.2. A search or
    agent saved before these settings existed continues as it ran: without them."""
    import dataclasses

    for name in ("catch-meta", "catch-zero", "catch-random", "catch-oracle"):
        config = methods.make_config(name)
        assert (config.skip_evaluated, config.temperature_end) == (True, 0.2)
    sfs = methods.make_config("catch-sfs")
    assert (sfs.skip_evaluated, sfs.temperature_end) == (True, None)
    saved = dataclasses.asdict(methods.make_config("catch-meta", entropy_coef_end=0.1))
    for key in ("skip_evaluated", "temperature_end"):
        saved.pop(key)
    old = methods.restore("catch-meta", saved)
    assert (old.skip_evaluated, old.temperature_end, old.entropy_coef_end) == (False, None, 0.1)
    saved.update(skip_evaluated=True, temperature_end=0.5)
    assert methods.restore("catch-meta", saved).temperature_end == 0.5
