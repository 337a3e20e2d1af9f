"""Meta-training through ask/tell (issue 24): the table meta-training's agent when the table
answers, resumable between any two steps, and tasks that are the generator's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import methods
from catchjax.asktell.meta import MetaTraining, pool_tasks
from catchjax.asktell.search import task_domain
from catchjax.errors import CatchjaxError
from catchjax.methods import catch_meta
from catchjax.runs import agent as agents

TINY = dict(candidates=6, n_initial=3, hidden=8, updates_per_epoch=2, meta_epochs=3,
            meta_budget=6, entropy_coef=0.5)


@pytest.fixture(scope="module")
def setting(syn_nb201):
    pool = agents.pool_rewards(syn_nb201, agents.meta_pool(syn_nb201))
    config = methods.make_config("catch-meta", **TINY)
    agent, info = jax.jit(lambda k: catch_meta.train(config, k, syn_nb201.arrays,
                                                jnp.asarray(pool)))(jax.random.key(5))
    return pool, agent, info


def answer(meta, pool, proposals):
    rows = [int(meta.domain.arrays.code_to_row[int(meta.domain.space.encode(
        np.asarray(p["actions"])))]) for p in proposals]
    return rows, [float(pool[p["task"]["pool_task"]][r]) for p, r in zip(proposals, rows)]


def drive(meta, pool, k=1, reload=None):
    rows = []
    while not meta.done:
        proposals = meta.ask(k)
        assert proposals, meta.why_not_more()
        got, rewards = answer(meta, pool, proposals)
        rows += got
        if reload is not None:
            meta = reload(meta)
        meta.tell([p["id"] for p in proposals], rewards)
    return rows, meta


def close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-6)


def test_meta_training_through_ask_tell_is_the_table_meta_training(setting, syn_nb201):
    pool, agent, info = setting
    meta = MetaTraining.start(task_domain(syn_nb201), pool_tasks(len(pool)), seed=5, **TINY)
    rows, meta = drive(meta, pool)
    assert [e["task"]["pool_task"] for e in meta.epochs] == np.asarray(
        info["pool_task"]).tolist()
    assert rows == np.asarray(info["rows"]).reshape(-1).tolist()
    trained = meta.trained()
    close(trained.agent, agent)
    assert trained.method == "catch-meta" and trained.config.entropy_coef == 0.5
    assert len(meta.history()) == TINY["meta_epochs"] * TINY["meta_budget"]
    assert meta.ask(2) == [] and "meta-training is done" in meta.why_not_more()


def test_killed_between_two_tells_and_reloaded_it_continues_to_the_same_agent(
        setting, syn_nb201, tmp_path):
    pool, agent, info = setting
    tasks = pool_tasks(len(pool))
    meta = MetaTraining.start(task_domain(syn_nb201), tasks, seed=5,
                              state_dir=tmp_path / "m", **TINY)
    rows, meta = drive(meta, pool, reload=lambda m: MetaTraining.load(m.state_dir, tasks))
    assert rows == np.asarray(info["rows"]).reshape(-1).tolist()
    close(MetaTraining.load(tmp_path / "m", tasks).trained().agent, agent)
    # the trained agent is an agent like any: saved, then adapted by catch-meta
    ck = agents.save_agent(tmp_path / "agent", meta.trained())
    loaded = agents.load_agent(ck, method="catch-meta")
    assert loaded.pool[0].startswith('{"pool_task"')


def test_a_second_worker_continues_the_same_meta_epoch(setting, syn_nb201, tmp_path):
    pool, _, _ = setting
    tasks = pool_tasks(len(pool))
    a = MetaTraining.start(task_domain(syn_nb201), tasks, seed=5, state_dir=tmp_path / "w",
                           **TINY)
    first = a.ask(3)  # the seeds of meta-epoch 0
    b = MetaTraining.load(tmp_path / "w", tasks)
    _, rewards = answer(b, pool, first)
    b.tell([p["id"] for p in first], rewards)  # worker b tells what a asked
    nxt = a.ask(1)  # a sees b's results: the search moves on
    assert nxt and nxt[0]["id"] == 3 and nxt[0]["meta_epoch"] == 0


def test_tasks_are_the_generators_and_a_different_generator_is_refused(syn_nb201, tmp_path):
    seen = []

    def subsets(m, key):
        classes = sorted(np.random.default_rng(int(jax.random.randint(key, (), 0, 2**30)))
                         .choice(10, 3, replace=False).tolist())
        seen.append(classes)
        return {"classes": classes}

    meta = MetaTraining.start(task_domain(syn_nb201), subsets, seed=1,
                              state_dir=tmp_path / "t", **TINY)
    proposals = meta.ask(3)
    assert all(p["task"] == {"classes": seen[0]} for p in proposals)
    with pytest.raises(CatchjaxError, match="meta-epoch 0 was on task"):
        MetaTraining.load(tmp_path / "t", lambda m, key: {"classes": [0, 1, 2]})
    with pytest.raises(CatchjaxError, match="must return a dict"):
        MetaTraining.start(task_domain(syn_nb201), lambda m, key: [1, 2], **TINY).ask(1)
    with pytest.raises(CatchjaxError, match="not catch-sfs"):
        MetaTraining.start(task_domain(syn_nb201), subsets, method="catch-sfs")
    with pytest.raises(CatchjaxError, match="meta_batch=1"):
        MetaTraining.start(task_domain(syn_nb201), subsets, meta_batch=2)


def _first_meta_ask(tmp_path, tasks: str, k: int):
    """A tiny meta-training started from the command line with its first ``k``
    proposals in ``p.json``: ``(state folder, proposals file)``."""
    from catchjax import cli

    state, props = tmp_path / "meta", tmp_path / "p.json"
    sets = [x for name, v in dict(TINY, meta_epochs=2, meta_budget=4).items()
            for x in ("--set", f"{name}={v}")]
    assert cli.main(["meta-ask", "--state", str(state), "--space",
                     "table:synthetic-nb201/cifar10", "--tasks", tasks, "-k", str(k),
                     "--out", str(props), *sets]) == 0
    return state, props


def test_meta_training_from_the_command_line_with_a_named_generator(syn_nb201, tmp_path,
                                                                     capsys):
    import json

    from catchjax import cli
    from catchjax.asktell.meta import named_tasks

    state, props = _first_meta_ask(tmp_path, "classes:10:3-6", 3)
    told = 0
    while True:
        proposals = json.loads(props.read_text())["proposals"]
        if not proposals:
            break
        assert all(3 <= len(p["task"]["classes"]) <= 6 for p in proposals)
        results = tmp_path / "r.csv"
        results.write_text("id,reward\n" + "".join(f"{p['id']},{0.1 * (p['id'] % 7)}\n"
                                                   for p in proposals))
        assert cli.main(["meta-tell", "--state", str(state), str(results)]) == 0
        told += len(proposals)
        assert cli.main(["meta-ask", "--state", str(state), "-k", "3", "--out", str(props),
                         "--agent-out", str(tmp_path / "agent")]) == 0
    assert told == 8 and (tmp_path / "agent" / "catchjax.json").exists()
    assert "meta-training is done" in capsys.readouterr().err
    # reloads without Python: the named generator is in the manifest
    meta = MetaTraining.load(state)
    assert meta.done and meta.tasks_name == "classes:10:3-6"
    first = named_tasks("classes:10:3-6")(0, jax.random.key(0))
    assert first == named_tasks("classes:10:3-6")(0, jax.random.key(0))
    for bad in ("classes:10", "classes:10:7-3", "subsets:4", "pool:0"):
        with pytest.raises(CatchjaxError, match="task generator|at least one|low <= high"):
            named_tasks(bad)
    assert cli.main(["meta-ask", "--state", str(state), "--space", "residual"]) == 2
    assert "leave out --space" in capsys.readouterr().err
    # the agent adapts like any agent: an ask/tell search with --init
    assert cli.main(["ask", "--state", str(tmp_path / "adapt"), "--method", "catch-meta",
                     "--space", "table:synthetic-nb201/cifar10", "--budget", "6",
                     "--init", str(tmp_path / "agent"), "-k", "3",
                     "--out", str(tmp_path / "a.json")]) == 0
    assert len(json.loads((tmp_path / "a.json").read_text())["proposals"]) == 3


def test_lost_proposals_come_back_and_bad_tells_are_refused(syn_nb201, tmp_path, capsys):
    """Proposals whose file was lost are handed out again (--pending), the reason no new
    one comes names them; ids are never truncated (0.7 is not 0); an arch-only CSV says
    meta-tell needs ids; a folder that is not a meta-training gets no lock file."""
    import json

    from catchjax import cli

    state, props = _first_meta_ask(tmp_path, "pool:3", 4)
    asked = json.loads(props.read_text())["proposals"]
    props.unlink()  # the jobs and their file are lost
    capsys.readouterr()
    assert cli.main(["meta-ask", "--state", str(state), "-k", "2", "--out", str(props)]) == 0
    assert json.loads(props.read_text())["proposals"] == []
    err = capsys.readouterr().err
    ids = [p["id"] for p in asked]  # the seeds: the rest waits for their rewards
    assert f"waits for the rewards of proposals {ids}" in err and "--pending" in err
    assert cli.main(["meta-ask", "--state", str(state), "--pending", "--out", str(props)]) == 0
    assert json.loads(props.read_text())["proposals"] == asked

    meta = MetaTraining.load(state)
    with pytest.raises(CatchjaxError, match="proposal ids must be integers, got 0.7"):
        meta.tell([0.7, 1], [0.5, 0.6])
    assert MetaTraining.load(state).pending_proposals() == asked  # nothing was told
    results = tmp_path / "r.csv"
    results.write_text("arch,reward\n" + "".join(f"{p['arch']},0.5\n" for p in asked))
    assert cli.main(["meta-tell", "--state", str(state), str(results)]) == 2
    assert "needs the id column" in capsys.readouterr().err

    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    for argv in (["meta-ask", "--state", str(mine)], ["ask", "--state", str(mine)],
                 ["tell", "--state", str(mine), str(results)]):
        assert cli.main(argv) == 2, argv
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"], argv
