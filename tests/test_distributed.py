"""Sweeps across processes (jax.distributed on the CPU, two local processes) and over many
devices of one process: the same trials as one process on one device, bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catchjax import cli

SWEEP = ["sweep", "--method", "rea", "--benchmark", "synthetic-nb201", "--task", "cifar10",
         "--trials", "10", "--budget", "15", "--seed", "2", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, tmp=None):
    """A CLI process (with the suite's compilation cache, as a user's CLI calls have
    theirs); ``tmp``: its temporary folder, where a supervisor keeps JAX's log of a run
    that failed."""
    env = None if tmp is None else {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-m", "catchjax.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_process_sweep_equals_one_process(tmp_path):
    port = _free_port()
    hosts = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [_cli(*SWEEP, "--out", str(tmp_path / "two"), *hosts, "--process-id", str(i),
                  "--init-timeout", "60") for i in (0, 1)]
    one = _cli(*SWEEP, "--out", str(tmp_path / "one"))
    outs = [p.communicate(timeout=300) for p in (*procs, one)]
    for p, (_, err) in zip((*procs, one), outs):
        assert p.returncode == 0, err[-2000:]
    assert "cpu x2 (2 processes)" in outs[0][0]
    assert "process 0 writes the results" in outs[1][0]
    assert (tmp_path / "two" / "results.csv").read_bytes() == \
        (tmp_path / "one" / "results.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # nothing else written


def test_a_coordinator_that_never_answers_is_a_clear_error(tmp_path):
    p = _cli(*SWEEP, "--out", str(tmp_path / "x"), "--coordinator",
             f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "1",
             "--init-timeout", "1")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert "did not answer within 1 s" in err and "start process 0" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("flags, match", [
    (["--coordinator", "127.0.0.1:1234"], "go together"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"],
     r"in 0\.\.1"),
])
def test_bad_process_flags_fail_before_anything_runs(tmp_path, capsys, flags, match):
    import re

    assert cli.main([*SWEEP, "--out", str(tmp_path / "x"), *flags]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_processes_given_different_commands_both_refuse_naming_the_argument(tmp_path):
    """--seed or --trials differing between processes mixed two runs' results or made
    both abort with a C++ stack (issue 21); now each says what differs, before any work."""
    hosts = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2",
             "--init-timeout", "60", "--out", str(tmp_path / "o")]
    procs = [_cli(*SWEEP, *hosts, "--process-id", "0"),
             _cli(*SWEEP, *hosts, "--process-id", "1", "--seed", "3", "--trials", "12")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [2, 2]
    assert "--seed is 2 here (process 0) but 3 on process 1" in outs[0][1]
    assert "--trials is 12 here (process 1) but 10 on process 0" in outs[1][1]
    assert "Check failure" not in outs[0][1] + outs[1][1]
    assert not (tmp_path / "o").exists()


def test_failures_of_the_runtime_end_in_one_line_within_the_timeout(tmp_path):
    """Process 0 alone, a program that is not JAX's coordinator on the port, and a peer
    killed mid-sweep: one line each (not a C++ stack dump), bounded by --init-timeout;
    a nan timeout is refused rather than waiting forever."""
    import signal
    import threading
    import time

    # The three scenarios run at once (each mostly waits on a timeout), each into its own
    # output folder.
    out = ["--out", str(tmp_path / "o")]
    logs = tmp_path / "logs"  # not the machine's /tmp: a failed run's JAX log stays there
    logs.mkdir()
    alone = _cli(*SWEEP, "--out", str(tmp_path / "alone"), "--coordinator",
                 f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "0",
                 "--init-timeout", "2", tmp=logs)

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def answer_like_a_web_server():
        for _ in range(4):
            conn, _ = server.accept()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_like_a_web_server, daemon=True).start()
    other = _cli(*SWEEP, "--out", str(tmp_path / "other"), "--coordinator",
                 f"127.0.0.1:{server.getsockname()[1]}", "--num-processes", "2",
                 "--process-id", "1", "--init-timeout", "5", tmp=logs)

    long = [*SWEEP[:7], "--trials", "20000", "--budget", "300", "--no-progress"]
    hosts = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2",
             "--init-timeout", "10", *out]
    procs = [_cli(*long, *hosts, "--process-id", str(i), tmp=logs) for i in (0, 1)]

    _, err = alone.communicate(timeout=120)
    assert alone.returncode == 2 and "did not all join within --init-timeout 2 s" in err
    assert err.count("\n") == 1
    log = err.split("(JAX's log: ")[1].rstrip(")\n")  # kept, and named
    assert Path(log).parent == logs and Path(log).exists(), err
    _, err = other.communicate(timeout=120)
    assert other.returncode == 2 and "not as a JAX coordinator" in err
    server.close()
    assert cli.main([*SWEEP, "--out", str(tmp_path / "nan"), "--coordinator",
                     "127.0.0.1:1234", "--num-processes", "2", "--process-id", "1",
                     "--init-timeout", "nan"]) == 2

    partial = tmp_path / ".o.partial"
    deadline = time.monotonic() + 120
    while not partial.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert procs[0].poll() is None, procs[0].communicate()
    procs[1].send_signal(signal.SIGKILL)  # the supervisor: its child runs on, orphaned
    start = time.monotonic()
    _, err = procs[0].communicate(timeout=120)
    assert procs[0].returncode == 2 and time.monotonic() - start < 60
    assert "another process of the run" in err and "Check failure" not in err
    procs[1].wait()


def test_two_processes_resume_the_progress_of_process_0(tmp_path):
    """Process 0 restores the finished chunks of a killed sweep and shares them: the
    two-process result equals the uninterrupted one-process sweep."""
    port = _free_port()
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from catchjax.runs import distributed
        pid = int(sys.argv[1])
        distributed.initialize("127.0.0.1:{port}", 2, pid, timeout=60)
        from catchjax import make_task, sweep
        task = make_task("synthetic-transnas-micro", "jigsaw")
        res = sweep("random", task, trials=12, budget=8, seed=5, chunk_size=4,
                    progress_dir=r"{tmp_path / 'progress'}")
        np.save(r"{tmp_path}/rows%d.npy" % pid, res.rows)
        print("run", res.trials_run)
    """)
    prep = textwrap.dedent(f"""
        import numpy as np
        from catchjax import make_task, sweep
        task = make_task("synthetic-transnas-micro", "jigsaw")
        res = sweep("random", task, trials=12, budget=8, seed=5, chunk_size=4,
                    progress_dir=r"{tmp_path / 'progress'}")
        np.save(r"{tmp_path}/full.npy", res.rows)
    """)
    done = subprocess.run([sys.executable, "-c", prep], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "progress" / "chunks" / "000002.npz").unlink()  # as if killed in chunk 2
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert all("run 4" in out for out, _ in outs)  # only the missing chunk ran
    import numpy as np

    full = np.load(tmp_path / "full.npy")
    for i in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"rows{i}.npy"), full)


def test_sweep_over_eight_forced_devices_equals_one_device():
    """10 trials over 8 devices: padded to 16, the copies dropped, never mixed in."""
    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, numpy as np
        from catchjax import make_task, sweep
        assert jax.local_device_count() == 8
        task = make_task("synthetic-transnas-macro", "class_scene")
        eight = sweep("reinforce", task, trials=10, budget=12, seed=4)
        one = sweep("reinforce", task, trials=10, budget=12, seed=4,
                    devices=jax.local_devices()[:1])
        assert np.array_equal(eight.rows, one.rows) and eight.rows.shape == (10, 12)
        assert np.array_equal(eight.rewards, one.rewards)
        assert eight.device.endswith("x8")
        few = sweep("reinforce", task, trials=3, budget=12, seed=4)  # fewer trials than devices
        assert np.array_equal(few.rows, one.rows[:3])
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok" in out.stdout
