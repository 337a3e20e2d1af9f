"""catchjax.integrations.optuna: every catchjax method as an optuna sampler, one search per
study rebuilt by every worker from the storage (in memory, SQLite, journal file and a
throwaway PostgreSQL server with 4 worker processes, one killed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="pip install -e '.[optuna]' (or '.[test]')")

from catchjax import AskTell, make_task  # noqa: E402
from catchjax.errors import CatchjaxError  # noqa: E402
from catchjax.integrations.optuna import CatchjaxSampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "optuna_worker.py"


@pytest.fixture(scope="module")
def table():
    task = make_task("synthetic-nb201", "cifar10")
    reward = np.asarray(task.arrays.reward)  # one transfer, not one per row
    return {task.table.arch_str[r]: float(reward[r]) for r in np.flatnonzero(task.searchable)}


def _objective(sampler, table, fail=(), sign=1.0):
    def objective(trial):
        sampler.suggest(trial)
        if trial.number in fail:
            raise RuntimeError("this training run crashed")
        return sign * table[sampler.arch(trial.params)]
    return objective


def _own_ask_tell(method, table, n, fail=(), **kw):
    """catchjax's own ask/tell, one proposal and its result at a time."""
    search, archs, lowest = AskTell.start(method, "nb201", seed=0, **kw), [], None
    for i in range(n):
        p = search.ask(1)[0]
        archs.append(p["arch"])
        r = table[p["arch"]] if i not in fail else (0.0 if lowest is None else lowest)
        lowest = r if lowest is None else min(lowest, r)
        search.tell([p["id"]], [r])
    return archs


@pytest.mark.parametrize("method", ["rea", "random", "catch-sfs"])
def test_a_sequential_study_is_the_methods_own_ask_tell(table, method):
    small = {"catch-sfs": {"hidden": 16, "candidates": 16, "z_dim": 4}}.get(method, {})
    sampler = CatchjaxSampler(method, "nb201", budget=24, **small)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(sampler, table), n_trials=24)
    archs = [t.system_attrs["catchjax"]["arch"] for t in study.trials]
    assert archs == _own_ask_tell(method, table, 24, budget=24, **small)
    assert [sampler.arch(t.params) for t in study.trials] == archs  # params are the arch
    assert {t.system_attrs["catchjax"]["source"] for t in study.trials} == {"method"}


def test_failed_trials_are_told_a_low_reward_and_minimizing_negates(table):
    sampler = CatchjaxSampler("rea", "nb201", budget=30, population=5)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(_objective(sampler, table, fail={3, 12}, sign=-1.0), n_trials=30,
                   catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 2 and len(states) == 30
    archs = [t.system_attrs["catchjax"]["arch"] for t in study.trials]
    assert archs == _own_ask_tell("rea", table, 30, fail={3, 12}, budget=30, population=5)


def test_a_method_waiting_for_rewards_gives_an_ungiven_random_network(table):
    """Local search proposes one network at a time: a second worker asking meanwhile gets
    a network no trial has (recorded as random), and the search goes on after."""
    sampler = CatchjaxSampler("ls", "nb201", budget=10, n_initial=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    first, second = study.ask(), study.ask()
    sampler.suggest(first), sampler.suggest(second)

    def attrs(trial):
        return study.trials[trial.number].system_attrs

    assert attrs(first)["catchjax"]["source"] == "method"
    assert attrs(second)["catchjax"]["source"].startswith("random (")
    assert sampler.arch(first.params) != sampler.arch(second.params)
    study.tell(first, table[sampler.arch(first.params)])
    study.tell(second, table[sampler.arch(second.params)])
    third = study.ask()
    sampler.suggest(third)
    assert attrs(third)["catchjax"]["source"] == "method"
    assert attrs(third)["catchjax"]["told"] == [0]  # the random one is not the method's


def test_spaces_as_optuna_distributions_and_clear_refusals(table):
    dists = {"width": optuna.distributions.CategoricalDistribution([32, 64, 128]),
             "act": optuna.distributions.CategoricalDistribution(["relu", "tanh"])}
    sampler = CatchjaxSampler("random", dists, budget=6)  # draws without replacement
    study = optuna.create_study(direction="maximize", sampler=sampler)
    with pytest.warns(UserWarning, match="'lr'.*sampled at random"):
        study.optimize(lambda t: t.suggest_categorical("width", [32, 64, 128]) / 64
                       + (t.suggest_categorical("act", ["relu", "tanh"]) == "relu")
                       + t.suggest_float("lr", 1e-3, 1e-1), n_trials=6)
    assert len({(t.params["width"], t.params["act"]) for t in study.trials}) == 6
    with pytest.raises(CatchjaxError, match="not a CategoricalDistribution"):
        CatchjaxSampler("rea", {"lr": optuna.distributions.FloatDistribution(0.1, 1.0)})
    with pytest.raises(CatchjaxError, match="unknown method"):
        CatchjaxSampler("reaa", "nb201")
    one = CatchjaxSampler("random", "nb201", budget=4)
    two = optuna.create_study(directions=["maximize", "minimize"], sampler=one)
    with pytest.raises(CatchjaxError, match="one objective"):
        two.optimize(lambda t: (len(one.suggest(t)), 2.0), n_trials=1)


def test_a_replayed_proposal_other_than_recorded_is_named(table):
    sampler = CatchjaxSampler("rea", "nb201", budget=12, population=4)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective(sampler, table), n_trials=12)
    assert CatchjaxSampler("rea", "nb201", budget=12, population=4).replay(study) == {
        "method": 12, "random": 0, "other": 0}
    with pytest.raises(CatchjaxError, match="the workers differ"):
        CatchjaxSampler("rea", "nb201", budget=12, population=4, seed=1).replay(study)


def _workers(storage, name, method, budget, counts, kill=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return [subprocess.Popen([sys.executable, str(WORKER), storage, name, method, str(budget),
                              str(n)] + ([str(kill)] if kill and i == 0 else []), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i, n in enumerate(counts)]


def _check_shared_study(study, table, budget, population=10, killed=False):
    """Every finished trial is there; REA's children are one edit from an earlier told
    network; a fresh sampler replays the study to the same proposals."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == (1 if killed else 0)
    for t in done:
        assert t.value == table[t.system_attrs["catchjax"]["arch"]]
    method = [t for t in trials if t.system_attrs.get("catchjax", {}).get("source") == "method"]
    told: list[str] = []
    by_number = {t.number: t for t in trials}
    for t in trials:
        if "catchjax" not in t.system_attrs:
            continue
        told += [by_number[j].system_attrs["catchjax"]["arch"] for j in
                 t.system_attrs["catchjax"]["told"]]
        if t in method and len([m for m in method if m.number < t.number]) >= population:
            arch = t.system_attrs["catchjax"]["arch"]
            edits = [sum(a != b for a, b in zip(arch.split("|"), p.split("|"))) for p in told]
            assert 1 in edits, (t.number, arch)
    counts = CatchjaxSampler("rea", "nb201", budget=budget, seed=0).replay(study)
    assert counts["method"] == len(method) and counts["other"] == 0


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_worker_processes_share_one_search(tmp_path, table, kind):
    if kind == "sqlite":
        storage = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        storage = str(tmp_path / "journal.log")
    made = (storage if kind == "sqlite" else optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    optuna.create_study(study_name="s", storage=made, direction="maximize")
    if kind == "journal":
        storage = "journal:" + storage
    procs = _workers(storage, "s", "rea", 40, [20, 20])
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="s", storage=made)
    assert len(study.trials) == 40
    _check_shared_study(study, table, 40)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server (initdb + postgres, as the postgres user when run as
    root, which PostgreSQL refuses to be); its URL."""
    pytest.importorskip("psycopg", reason="pip install 'psycopg[binary]' for PostgreSQL")
    initdb, server = shutil.which("initdb"), shutil.which("postgres")
    if not (initdb and server):
        pytest.skip("no PostgreSQL binaries (initdb, postgres) on PATH")
    # not under pytest's folders: the server's user must reach its data folder
    base = Path(tempfile.mkdtemp(prefix="catchjax-test-pg-"))
    data = base / "pg"
    as_user = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: PostgreSQL refuses root")
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
        data.mkdir()
        shutil.chown(data, "postgres")
        os.chmod(base, 0o755)
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([*as_user, server, "-D", str(data), "-p", str(port), "-k",
                             str(data), "-h", "127.0.0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            optuna.storages.RDBStorage(url)
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def test_four_workers_on_postgresql_one_killed_lose_nothing(postgres, table):
    optuna.create_study(study_name="s", storage=postgres, direction="maximize")
    procs = _workers(postgres, "s", "rea", 60, [15, 15, 15, 15], kill=6)
    for i, p in enumerate(procs):
        _, err = p.communicate(timeout=300)
        if i == 0:
            assert p.returncode == -9, err[-3000:]  # killed in its 6th objective
        else:
            assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="s", storage=postgres)
    assert len(study.trials) == 6 + 45
    _check_shared_study(study, table, 60, killed=True)


def test_the_docs_example_runs_as_written(tmp_path, monkeypatch):
    """docs/optuna.md's first example, run as a user would paste it (in a fresh folder),
    then again: the SQLite study continues instead of starting over."""
    text = (ROOT / "docs" / "optuna.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 25
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/optuna.md", "exec"), {"__name__": "__main__"})
    study = optuna.load_study(study_name="nas", storage="sqlite:///nas.db")
    assert len(study.trials) == 60 and study.best_value > 0
    assert CatchjaxSampler("rea", "nb201", budget=60).replay(study)["method"] == 60


def test_without_optuna_the_import_says_how_to_get_it(monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "catchjax.integrations.optuna")
    with pytest.raises(CatchjaxError, match=r"pip install 'catchjax\[optuna\]'"):
        importlib.import_module("catchjax.integrations.optuna")


def test_a_pickled_sampler_continues_the_same_search(table):
    """Ray Tune checkpoints its searcher by pickling it: the sampler keeps its arguments
    and replays the study, so a restored one proposes what the original would have."""
    import pickle

    def run(restore_at):
        sampler = CatchjaxSampler("rea", "nb201", budget=20, population=5)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(_objective(sampler, table), n_trials=restore_at)
        if restore_at < 20:
            sampler = pickle.loads(pickle.dumps(sampler))
            study.sampler = sampler
            study.optimize(_objective(sampler, table), n_trials=20 - restore_at)
        return [t.system_attrs["catchjax"]["arch"] for t in study.trials]

    assert run(8) == run(20)


@pytest.mark.slow  # starts a local Ray cluster; `pytest -m slow` runs it
def test_the_ray_tune_example_runs(tmp_path):
    pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    pytest.importorskip("sklearn", reason="pip install -e '.[ray]'")
    from experiments import ray_tune_optuna

    assert ray_tune_optuna.main(["--samples", "8", "--set", "population=3", "--out",
                                 str(tmp_path)]) == 0
    import csv

    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and all(0.5 < float(r["accuracy"]) <= 1 for r in rows)
    assert all(int(r["width"]) in ray_tune_optuna.SPACE["width"] for r in rows)
