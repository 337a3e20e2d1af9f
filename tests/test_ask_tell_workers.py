"""Many workers on one ask/tell search (catchjax.asktell.search + catchjax.store.locking): every
told result lands exactly once, no id is handed out twice, crashes lose nothing, and
what a worker gives is what it says (issue 21)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from catchjax import cli, safe_io
from catchjax.asktell import saved
from catchjax.asktell.search import LOCK, MANIFEST, AskTell, read_manifest
from catchjax.errors import CatchjaxError
from catchjax.store import folder, locking

WORKER = Path(__file__).with_name("ask_tell_worker.py")
sys.path.insert(0, str(WORKER.parent))
from ask_tell_worker import main as run_worker  # noqa: E402
from ask_tell_worker import reward_of  # noqa: E402


def check_logs(state_dir, logs):
    """The worker logs against the folder: each asked id went to one worker only, each
    told result is in the state with its reward, and the state loads."""
    final = AskTell.load(state_dir)
    asked, told = {}, []
    for log in logs:
        for line in Path(log).read_text().splitlines():
            kind, i, *arch = line.split()
            if kind == "A":
                assert int(i) not in asked, f"id {i} handed out twice"
                asked[int(i)] = arch[0]
            else:
                told.append(int(i))
    assert len(told) == len(set(told))
    for i, arch in asked.items():
        assert final.log[i]["arch"] == arch
    for i in told:
        assert final.log[i]["reward"] == reward_of(i)
    in_state = [p["id"] for p in final.log if p["reward"] is not None]
    assert set(told) <= set(in_state)
    assert int(final.state.ledger.n_asked) == final.n_asked
    return final, asked, told


def test_eight_processes_with_kills_lose_no_result(tmp_path):
    state = tmp_path / "search"
    AskTell.start("random", "nb201", budget=400, seed=0, state_dir=state)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    rng = random.Random(0)
    logs, procs = [], []

    def spawn(seed, n_ops):
        log = tmp_path / f"log{seed}"
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), str(state), str(seed), str(n_ops), str(log)], env=env))
        return procs[-1], log

    workers = [spawn(w, 25) for w in range(8)]
    killed = 0
    deadline = time.monotonic() + 120
    for proc, log in rng.sample(workers, 3):  # SIGKILL three workers mid-run
        while proc.poll() is None and time.monotonic() < deadline and (
                not log.exists() or len(log.read_text().splitlines()) < 3):
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
            spawn(100 + killed, 8)  # a replacement worker carries on
    for proc in procs:
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    assert killed >= 1
    assert [p.returncode for p in procs].count(-signal.SIGKILL) == killed
    assert all(p.returncode == 0 for p in procs if p.returncode != -signal.SIGKILL)
    final, asked, told = check_logs(state, logs)
    assert len(told) > 50 and final.n_asked >= len(asked)
    # the crashed writers left nothing behind that the next write does not clean up
    final.ask(1)
    names = sorted(e.name for e in state.iterdir())
    assert names == sorted([LOCK, MANIFEST, read_manifest(state)["state_dir"]])


def test_two_handles_in_one_program_do_not_drop_each_others_results(tmp_path):
    state = tmp_path / "search"
    AskTell.start("random", "nb201", budget=200, seed=1, state_dir=state)
    a, b = AskTell.load(state), AskTell.load(state)
    ia = [p["id"] for p in a.ask(2)]
    ib = [p["id"] for p in b.ask(2)]  # b catches up with a's ask first
    assert ia == [0, 1] and ib == [2, 3]
    a.tell(ia, [0.1, 0.2])
    b.tell(ib, [0.3, 0.4])  # b's state did not hold a's tell: it is not lost
    assert [p["reward"] for p in AskTell.load(state).log] == [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(CatchjaxError, match="told already"):
        b.tell([0], [0.9])  # a's result, seen by b under the lock
    stale = AskTell.load(state)
    a.ask(1)
    with pytest.raises(CatchjaxError, match="changed by another worker"):
        stale.save()  # saving its older copy would drop a's ask
    # threads, each with its own handle, in a random order
    logs = [tmp_path / f"t{w}" for w in range(3)]
    threads = [threading.Thread(target=run_worker, args=(state, 10 + w, 12, logs[w]))
               for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_logs(state, logs)


def test_a_lock_held_too_long_names_its_holder(tmp_path):
    state = tmp_path / "search"
    search = AskTell.start("random", "nb201", budget=10, seed=0, state_dir=state,
                           lock_timeout=0.2)
    with locking.hold(state / LOCK):
        with pytest.raises(CatchjaxError, match=rf"locked by process {os.getpid()} .*0.2 s"):
            search.ask(1)
    assert search.ask(1)[0]["id"] == 0
    with pytest.raises(CatchjaxError, match="lock timeout"):
        AskTell.load(state, lock_timeout=float("nan"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_crash_while_replacing_a_folder_never_starts_an_empty_search(tmp_path, capsys):
    """The first format replaced the whole folder: a kill after setting the old one
    aside left only that copy, and the next ask deleted it and started anew. Now the
    next command moves it back and continues it."""
    state = tmp_path / "search"
    search = AskTell.start("random", "nb201", budget=20, seed=0, state_dir=state)
    ids = [p["id"] for p in search.ask(3)]
    search.tell(ids, [0.1, 0.2, 0.3])
    aside = tmp_path / f".search.{safe_io.OLD_TAG}-{_dead_pid()}-abc"
    aside.mkdir()
    state.rename(aside / "search")
    assert cli.main(["ask", "--state", str(state), "--method", "random", "--space", "nb201",
                     "--budget", "20", "-k", "1"]) == 0
    out = capsys.readouterr()
    assert "moved back" in out.err and json.loads(out.out)["proposals"][0]["id"] == 3
    assert [p["reward"] for p in AskTell.load(state).log[:3]] == [0.1, 0.2, 0.3]
    assert not aside.exists()


def test_an_interrupted_write_leaves_the_last_complete_state(tmp_path, monkeypatch):
    state = tmp_path / "search"
    search = AskTell.start("rea", "nb201", budget=20, seed=0, state_dir=state, population=3)
    search.tell([p["id"] for p in search.ask(3)], [0.1, 0.2, 0.3])
    before = (state / MANIFEST).read_bytes()

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # the process is stopped after the new state is written

    monkeypatch.setattr(safe_io, "atomic_write_bytes", die)
    with pytest.raises(KeyboardInterrupt):
        search.ask(2)
    monkeypatch.undo()
    assert (state / MANIFEST).read_bytes() == before
    again = AskTell.load(state)
    assert again.n_asked == 3 and again.pending == []
    assert [p["id"] for p in again.ask(2)] == [3, 4]
    assert len([e for e in state.iterdir() if e.name.startswith("state")]) == 1


def test_a_first_format_folder_loads_and_is_converted_on_its_next_write(tmp_path,
                                                                        monkeypatch):

    state = tmp_path / "search"
    monkeypatch.setattr(saved, "FORMAT", 2)  # its state leaf by leaf, as format 1 saved it
    search = AskTell.start("random", "nb201", budget=10, seed=0, state_dir=state)
    search.tell([p["id"] for p in search.ask(2)], [0.5, 0.6])
    monkeypatch.undo()
    meta = json.loads((state / MANIFEST).read_text())  # rewrite it as format 1 wrote it
    (state / meta.pop("state_dir")).rename(state / "state")
    meta.pop("generation")
    (state / LOCK).unlink()
    meta["format"] = 1
    meta["manifest_sha256"] = folder.manifest_digest(meta)
    (state / MANIFEST).write_text(json.dumps(meta))
    old = AskTell.load(state)
    assert [p["reward"] for p in old.log] == [0.5, 0.6]
    old.ask(1)
    assert read_manifest(state)["format"] == saved.FORMAT and not (state / "state").exists()
    assert AskTell.load(state).n_asked == 3


def test_inputs_are_what_they_say(tmp_path):
    """Each of these was accepted silently before (issue 21)."""
    state = tmp_path / "search"
    search = AskTell.start("random", "nb201", budget=10, seed=0, state_dir=state)
    ids = [p["id"] for p in search.ask(np.int64(3))]  # a NumPy integer is an integer
    saved = (state / MANIFEST).read_bytes()
    for (i, r), words in [(([ids[0]], [1e39]), "does not fit"), (([ids[0]], [True]), "boolean"),
                          (([2.7], [0.1]), "must be integers"), (([True], [0.1]), "integers")]:
        with pytest.raises(CatchjaxError, match=words):
            search.tell(i, r)
    with pytest.raises(CatchjaxError, match="2 extras"):
        search.tell([ids[0]], [0.1], extras=[{}, {}])
    with pytest.raises(CatchjaxError, match="extras hold numbers"):
        search.tell([ids[0]], [0.1], extras=[{"model": object()}])
    with pytest.raises(CatchjaxError, match="domain must be"):
        AskTell.start("random", 123)
    assert (state / MANIFEST).read_bytes() == saved
    search.tell(["2", 0.0], [0.25, -1.0], extras=[{"acc": np.float32(0.5), "n": np.int64(3)},
                                                    {"loss": float("nan")}])
    meta = json.loads((state / MANIFEST).read_text())  # strict JSON: no bare NaN
    assert meta["proposals"][2]["extras"] == {"acc": 0.5, "n": 3}
    assert meta["proposals"][0]["extras"] == {"loss": "nan"}
    with pytest.raises(CatchjaxError, match="appears twice in one tell: 1$"):
        search.tell([1, 1], [0.1, 0.2])


def test_the_command_line_refuses_what_it_would_ignore(tmp_path, capsys):
    state, link = tmp_path / "search", tmp_path / "link"
    start = ["ask", "--state", str(state), "--method", "random", "--space", "nb201"]
    assert cli.main([*start, "--budget", "9", "--seed", "4"]) == 0
    for extra, words in [(["--budget", "10"], "budget 10 (it has 9)"),
                         (["--seed", "5"], "seed 5 (it has 4)"),
                         (["--set", "replace=yes"], "replace=yes (it has False)")]:
        assert cli.main([*start, *extra]) == 2
        assert words in capsys.readouterr().err
    assert cli.main([*start, "--budget", "9", "--seed", "4"]) == 0  # the same: fine
    link.symlink_to(state)
    assert cli.main(["ask", "--state", str(link)]) == 0  # the link's folder is written
    assert link.is_symlink() and AskTell.load(state).n_asked == 3
    capsys.readouterr()
    missing = tmp_path / "no" / "proposals.json"
    assert cli.main(["ask", "--state", str(state), "--out", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert AskTell.load(state).n_asked == 3  # nothing asked that nobody would receive
    results = tmp_path / "r.csv"
    results.write_bytes("\ufeffid, reward, acc\n0, 0.5, 1\n".encode())  # Excel, spaces
    assert cli.main(["tell", "--state", str(state), str(results)]) == 0
    assert AskTell.load(state).log[0]["extras"] == {"acc": 1.0}
    for text, words in [("id,reward,reward\n1,0.1,0.2\n", "appears more than once"),
                        ("id,reward\n1.7,0.1\n", "not an integer")]:
        results.write_text(text)
        assert cli.main(["tell", "--state", str(state), str(results)]) == 2
        assert words in capsys.readouterr().err


def test_a_search_folder_one_may_not_write_still_loads(tmp_path, monkeypatch):
    """A collaborator reading a search on a shared file system: loading needs no lock file
    it cannot create; asking and telling do, and say so."""
    state = tmp_path / "search"
    AskTell.start("random", "nb201", budget=10, seed=0, state_dir=state).ask(2)
    (state / LOCK).unlink()
    real_open = os.open

    def no_write(path, flags, *args):
        if str(path).endswith(LOCK):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(locking.os, "open", no_write)
    search = AskTell.load(state)
    assert search.n_asked == 2
    with pytest.raises(CatchjaxError, match="must be writable"):
        search.ask(1)
