"""Meta-training, Orbax checkpoints of agents, and resumable sweeps."""

import json
import re
import shutil

import jax
import numpy as np
import pytest

from catchjax import cli
from catchjax.benchmarks import tasks
from catchjax.errors import CatchjaxError
from catchjax.methods import catch
from catchjax.runs import agent as agents
from catchjax.runs import sweeps

TINY = catch.CatchConfig(budget=12, candidates=12, hidden=16, updates_per_epoch=2,
                         meta_epochs=4, meta_budget=8, meta_trained=True)


@pytest.fixture(scope="module")
def trained(syn_nb201):
    return agents.meta_train(syn_nb201, TINY, seed=0)


@pytest.fixture(scope="module")
def checkpoint(trained, tmp_path_factory):
    return agents.save_agent(tmp_path_factory.mktemp("ck") / "agent", trained)


def test_meta_pool_leaves_the_target_out(syn_nb201):
    # the default pool is the 12-epoch one (issue 8); the first reproduction's is "12,200"
    assert agents.meta_pool(syn_nb201) == ["cifar100_valid_acc_12", "imagenet16_valid_acc_12"]
    assert agents.meta_pool(syn_nb201, "12,200") == [
        "cifar100_valid_acc_12", "cifar100_valid_acc_200",
        "imagenet16_valid_acc_12", "imagenet16_valid_acc_200",
    ]
    micro = tasks.make_task("synthetic-transnas-micro", "segmentsemantic")
    pool = agents.meta_pool(micro)
    assert len(pool) == 6 and not any(p.startswith("segmentsemantic") for p in pool)


def test_meta_training_changes_the_agent_and_depends_on_the_seed(trained, syn_nb201):
    fresh = catch.init_agent(TINY, jax.random.split(jax.random.key(0))[0], 6, 5)
    moved = [not np.allclose(a, b) for a, b in
             zip(jax.tree.leaves(fresh.params), jax.tree.leaves(trained.agent.params))]
    assert any(moved)
    other = agents.meta_train(syn_nb201, TINY, seed=1)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(other.agent), jax.tree.leaves(trained.agent)))


def test_checkpoint_round_trip_continues_identically(trained, checkpoint, syn_nb201):
    restored = agents.load_agent(checkpoint, syn_nb201)
    for a, b in zip(jax.tree.leaves(trained.agent), jax.tree.leaves(restored.agent)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert restored.config == TINY and restored.pool == trained.pool
    one = sweeps.sweep(TINY, syn_nb201, trials=6, budget=12, seed=3, agent=trained.agent)
    two = sweeps.sweep(restored.config, syn_nb201, trials=6, budget=12, seed=3,
                       agent=restored.agent)
    np.testing.assert_array_equal(one.rows, two.rows)
    assert one.method == "catch-meta"


def test_bad_checkpoints_give_clear_errors(checkpoint, syn_nb201, tmp_path):
    with pytest.raises(CatchjaxError, match="does not exist"):
        agents.load_agent(tmp_path / "nope")
    with pytest.raises(CatchjaxError, match="incompatible config"):
        agents.load_agent(checkpoint, syn_nb201, hidden=64)
    with pytest.raises(CatchjaxError, match="no setting hiden"):
        agents.load_agent(checkpoint, syn_nb201, hiden=64)
    micro = tasks.make_task("synthetic-transnas-micro", "jigsaw")
    with pytest.raises(CatchjaxError, match="6 x 5 search space.*incompatible"):
        agents.load_agent(checkpoint, micro)
    half = tmp_path / "half"
    shutil.copytree(checkpoint, half)
    (half / "catchjax.json").unlink()  # writing stopped before the last file
    with pytest.raises(CatchjaxError, match="not a complete catchjax agent checkpoint"):
        agents.load_agent(half)
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    for f in (broken / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    with pytest.raises(CatchjaxError, match="damaged or incompatible"):
        agents.load_agent(broken)


def test_catch_meta_needs_an_agent_of_the_right_shape(trained, syn_nb201):
    with pytest.raises(CatchjaxError, match="adapts a meta-trained agent"):
        sweeps.sweep("catch-meta", syn_nb201, trials=2, budget=12)
    with pytest.raises(CatchjaxError, match="incompatible config"):
        sweeps.sweep(TINY, syn_nb201, trials=2, budget=12, agent=trained.agent, hidden=32)
    with pytest.raises(CatchjaxError, match="does not start from an agent"):
        sweeps.sweep("rea", syn_nb201, trials=2, budget=12, agent=trained.agent)


def test_killed_sweep_resumes_to_the_same_result(syn_nb201, tmp_path, monkeypatch):
    full = sweeps.sweep("reinforce", syn_nb201, trials=10, budget=15, seed=4, chunk_size=3)
    real = sweeps._compiled
    calls = {"n": 0}

    def dying(*args, **kw):
        compiled, seconds = real(*args, **kw)

        def run(*a):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # killed during the third chunk
            return compiled(*a)

        return run, seconds

    monkeypatch.setattr(sweeps, "_compiled", dying)
    progress = tmp_path / "progress"
    with pytest.raises(KeyboardInterrupt):
        sweeps.sweep("reinforce", syn_nb201, trials=10, budget=15, seed=4, chunk_size=3,
                     progress_dir=progress)
    monkeypatch.setattr(sweeps, "_compiled", real)
    calls["n"] = 0
    resumed = sweeps.sweep("reinforce", syn_nb201, trials=10, budget=15, seed=4, chunk_size=3,
                           progress_dir=progress)
    np.testing.assert_array_equal(resumed.rows, full.rows)
    np.testing.assert_array_equal(resumed.rewards, full.rewards)
    with pytest.raises(CatchjaxError, match="different sweep.*seed"):
        sweeps.sweep("reinforce", syn_nb201, trials=10, budget=15, seed=5, chunk_size=3,
                     progress_dir=progress)
    from catchjax.runs import progress as progress_mod

    monkeypatch.setattr(progress_mod, "code_versions",
                        lambda: {"catchjax": "9.9", "jax": "0.0", "jaxlib": "0.0"})
    with pytest.raises(CatchjaxError, match="different sweep.*code"):  # another catchjax/JAX
        sweeps.sweep("reinforce", syn_nb201, trials=10, budget=15, seed=4, chunk_size=3,
                     progress_dir=progress)


def test_cli_meta_train_then_adapt(tmp_path, capsys):
    sets = ["--set", "candidates=12", "--set", "hidden=16", "--set", "meta_epochs=3",
            "--set", "meta_budget=8"]
    ck = tmp_path / "agent"
    assert cli.main(["meta-train", "--benchmark", "synthetic-nb201", "--task", "cifar100",
                     "--out", str(ck), "--agents", "3", *sets]) == 0
    printed = capsys.readouterr().out
    assert "trained 3 catch-meta agents" in printed
    # and whether the training's seconds before it were a compile or a cache load
    assert re.search(r"after (a \d+\.\d s compile|loading its compiled program from the "
                     r"compilation cache in \d+\.\d s); saved", printed), printed
    out = tmp_path / "adapt"
    assert cli.main(["sweep", "--method", "catch-meta", "--benchmark", "synthetic-nb201",
                     "--task", "cifar100", "--trials", "4", "--budget", "10", "--init", str(ck),
                     "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "catch-meta" and summary["init"] == "../agent"  # run-relative
    assert (out / summary["init"]).resolve() == ck.resolve()
    assert "cifar10_valid_valid_acc_12" in summary["meta_pool"]
    assert not (tmp_path / ".adapt.partial").exists()
    # A sweep without --init meta-trains first and keeps its agents under --out:
    # test_several_agents.test_cli_sweep_trains_several_agents_and_init_takes_them_back.


def test_meta_train_trains_twenty_agents_by_default(tmp_path, monkeypatch):
    """Without --agents, `catchjax meta-train` trains CATCH's own count of agents in one
    call: 20 (enough to quote hit counts, issue 32), seeds from --seed on."""
    seen = []

    def counted(method, task, config, seeds, **_):
        seen.append((method, list(seeds)))
        raise KeyboardInterrupt  # stop before compiling

    monkeypatch.setattr(agents, "train_many", counted)
    assert cli.main(["meta-train", "--benchmark", "synthetic-nb201", "--task", "cifar100",
                     "--out", str(tmp_path / "a"), "--seed", "3"]) != 0
    assert seen == [("catch-meta", list(range(3, 23)))]
    assert not (tmp_path / "a").exists()


def test_a_manifest_without_its_checksum_loads_only_as_the_first_format(checkpoint, syn_nb201,
                                                                         tmp_path, capsys):
    """Deleting the checksum field no longer makes an edited manifest load (issue 21):
    only format 1 had none, and then its state files must match their own checksum."""
    from catchjax.store import checkpoints

    edited = tmp_path / "edited"
    shutil.copytree(checkpoint, edited)
    meta = json.loads((edited / "catchjax.json").read_text())
    meta.pop("manifest_sha256")
    meta["space"] = "transnas-macro"
    (edited / "catchjax.json").write_text(json.dumps(meta))
    with pytest.raises(CatchjaxError, match="no checksum of itself"):
        agents.load_agent(edited, syn_nb201)
    meta["format"], meta["space"] = 1, "nb201"
    (edited / "catchjax.json").write_text(json.dumps(meta))
    capsys.readouterr()
    agents.load_agent(edited, syn_nb201)
    assert "cannot be verified" in capsys.readouterr().err
    meta["state_sha256"] = "0" * 64
    (edited / "catchjax.json").write_text(json.dumps(meta))
    with pytest.raises(CatchjaxError, match="do not match their checksum"):
        checkpoints.load_agent(edited, syn_nb201)


def test_adapting_on_a_task_the_pool_held_warns(checkpoint, capsys):
    """The agent for cifar10 was meta-trained on cifar100's reward: adapting it to
    cifar100 is not transfer, and the user is told so."""
    capsys.readouterr()
    agents.load_agent(checkpoint, tasks.make_task("synthetic-nb201", "cifar10"))
    assert "warning" not in capsys.readouterr().err
    agents.load_agent(checkpoint, tasks.make_task("synthetic-nb201", "cifar100"))
    err = capsys.readouterr().err
    assert "cifar100_valid_acc_12" in err and "not transfer" in err


def test_meta_training_pool_may_not_hold_the_target(syn_nb201):
    config = catch.CatchConfig(meta_trained=True)
    with pytest.raises(CatchjaxError, match="target's own columns.*cifar10_valid_valid_acc_12"):
        agents.meta_train(syn_nb201, config, pool=["cifar10_valid_valid_acc_12",
                                                   "cifar100_valid_acc_12"])
    with pytest.raises(CatchjaxError, match="no metric 'nope'"):
        agents.meta_train(syn_nb201, config, pool=["nope"])


def test_an_agent_saved_before_a_setting_existed_keeps_the_behaviour_it_had(checkpoint,
                                                                             syn_nb201, tmp_path):
    """Issue 32 added skip_evaluated and temperature_end and changed their defaults; an
    agent whose manifest has neither restores with the values that reproduce its run (no
    skipping, no temperature), not today's defaults; one that has them keeps them."""
    from catchjax.store import folder

    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    meta = json.loads((old / "catchjax.json").read_text())
    meta["config"].update(skip_evaluated=True, temperature_end=0.3)
    meta["manifest_sha256"] = folder.manifest_digest(meta)
    (old / "catchjax.json").write_text(json.dumps(meta))
    kept = agents.load_agent(old, syn_nb201).config
    assert (kept.skip_evaluated, kept.temperature_end) == (True, 0.3)
    for key in ("skip_evaluated", "temperature_end"):
        meta["config"].pop(key)
    meta["manifest_sha256"] = folder.manifest_digest(meta)
    (old / "catchjax.json").write_text(json.dumps(meta))
    restored = agents.load_agent(old, syn_nb201).config
    assert (restored.skip_evaluated, restored.temperature_end) == (False, None)
