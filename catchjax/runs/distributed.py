"""Several processes (hosts) as one sweep, on JAX's own runtime (``jax.distributed``).

Every process runs the same command with its own process id; after
:func:`initialize`, ``jax.devices()`` lists the devices of all processes and a sweep's
``trials`` mesh axis spans them (:mod:`catchjax.runs.sweeps`): each process computes the
trials on its devices, the results are gathered with a collective, and only process 0
writes files. On the CPU the collectives run over gloo; on GPUs over NCCL; on a TPU pod
slice, SLURM or Open MPI, JAX finds the coordinator, process count and id itself
(``auto=True``, ``catchjax sweep --distributed``); elsewhere ``JAX_COORDINATOR_ADDRESS``
or the flags name them.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from catchjax.errors import CatchjaxError

SUPERVISED = "CATCHJAX_SUPERVISED"  # set in the child: the file it writes its phase to
RUN_KEY = "catchjax/run/"


def parse_coordinator(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CatchjaxError(f"--coordinator must be HOST:PORT (e.g. 10.0.0.1:1234), got "
                            f"{text!r}")
    return host.strip("[]"), int(port)


def check(coordinator, num_processes, process_id) -> None:
    """Refuse an incomplete or inconsistent set of flags before anything starts."""
    given = [x is not None for x in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise CatchjaxError("--coordinator, --num-processes and --process-id go together "
                            "(or use --distributed to let JAX detect them on SLURM, Open MPI "
                            "or a TPU pod)")
    if not any(given):
        return
    parse_coordinator(coordinator)
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) \
            or num_processes < 1:
        raise CatchjaxError(f"--num-processes must be a positive integer, got {num_processes!r}")
    if isinstance(process_id, bool) or not isinstance(process_id, int) \
            or not 0 <= process_id < num_processes:
        raise CatchjaxError(f"--process-id must be in 0..{num_processes - 1}, got "
                            f"{process_id!r}")


def check_timeout(value) -> float:
    """--init-timeout: a finite number of seconds > 0 (nan would wait forever)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CatchjaxError(f"--init-timeout must be a number of seconds, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise CatchjaxError(f"--init-timeout must be a finite number of seconds > 0, got "
                            f"{value!r}")
    return value


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def speaks_grpc(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether the service on host:port answers an HTTP/2 client preface with a SETTINGS
    frame, as JAX's coordinator (a gRPC server) does. Another program on the port would
    make JAX abort the process with a C++ stack dump instead of an error."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(_HTTP2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    return head[3] == 4  # the frame type of the server's first frame: SETTINGS


def wait_for_coordinator(host: str, port: int, timeout: float) -> None:
    """Process 0 hosts the coordinator; the others wait for its port to open. JAX itself
    aborts the whole process when the coordinator never answers, so this check comes
    first and fails with an error that says what to do."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                pass
        except OSError:
            if time.monotonic() >= deadline:
                raise CatchjaxError(
                    f"the coordinator {host}:{port} did not answer within {timeout:g} s: start "
                    f"process 0 with the same --coordinator first, and check the address, "
                    f"the port and the firewall") from None
            time.sleep(0.2)
            continue
        if speaks_grpc(host, port, min(5.0, timeout)):
            return
        raise CatchjaxError(
            f"{host}:{port} answers, but not as a JAX coordinator: another program holds "
            f"that port. Give process 0 and the others a free --coordinator port")


def initialize(coordinator=None, num_processes=None, process_id=None, timeout: float = 300,
               auto: bool = False, run: dict | None = None) -> bool:
    """Join the processes of one run; returns whether more than one process takes part.
    Call before any JAX computation. ``timeout`` bounds the wait for the others, and
    JAX's heartbeat and shutdown waits too. ``run``: what this process was asked to do
    (the command's arguments, less the process id); every process checks that all run
    the same before any work (:func:`agree`)."""
    check(coordinator, num_processes, process_id)
    timeout = check_timeout(timeout)
    if coordinator is None and not auto:
        return False
    import jax

    _phase("joining")
    bound = int(max(10, min(timeout, 300)))
    options = {"initialization_timeout": int(max(1, math.ceil(timeout))),
               "heartbeat_timeout_seconds": bound, "shutdown_timeout_seconds": bound}

    # CPU processes exchange results over gloo (the default CPU client has no collectives)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator is not None:
        host, port = parse_coordinator(coordinator)
        if process_id != 0:
            wait_for_coordinator(host, port, timeout)
        jax.distributed.initialize(coordinator, num_processes, process_id, **options)
    else:
        try:
            jax.distributed.initialize(**options)
        except (ValueError, RuntimeError) as exc:
            raise CatchjaxError(
                f"--distributed: JAX could not detect the cluster ({exc}); name it with "
                f"--coordinator, --num-processes and --process-id") from None
    if run is not None and jax.process_count() > 1:
        agree(run, timeout)
    _phase("running")
    return jax.process_count() > 1


def differences(mine: dict, theirs: dict) -> list[str]:
    """The arguments whose values differ between two processes' runs."""
    return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def agree(run: dict, timeout: float) -> None:
    """Every process publishes what it runs through JAX's coordinator; process 0 checks
    each other process's against its own, the others check process 0's. A difference
    (another --seed, --trials, --task, ...) fails on every process with one line that
    names it, before any work: otherwise the results would mix runs, or the collectives
    of differently shaped runs would abort with a C++ stack."""
    import jax
    from jax._src import distributed as jax_distributed

    client = jax_distributed.global_state.client
    me, n = jax.process_index(), jax.process_count()
    mine = json.loads(json.dumps(run, default=str))
    client.key_value_set(f"{RUN_KEY}{me}", json.dumps(mine, sort_keys=True))
    wait_ms = int(max(1, timeout) * 1000)
    for other in (range(1, n) if me == 0 else [0]):
        try:
            theirs = json.loads(client.blocking_key_value_get(f"{RUN_KEY}{other}", wait_ms))
        except Exception as exc:  # the JAX runtime's own error types
            raise CatchjaxError(f"process {other} did not say what it runs within "
                                f"{timeout:g} s ({type(exc).__name__}); start every process "
                                f"with the same command") from None
        diff = differences(mine, theirs)
        if diff:
            shown = "; ".join(f"{_flag(k)} is {mine.get(k)!r} here (process {me}) but "
                              f"{theirs.get(k)!r} on process {other}" for k in diff[:3])
            raise CatchjaxError(
                f"the processes were given different commands: {shown}. Run the same "
                f"command on every process, changing only --process-id")


def _phase(name: str) -> None:
    """Tell the supervising process (:func:`supervise`) how far this one got."""
    where = os.environ.get(SUPERVISED)
    if where:
        Path(where).write_text(name)


NATIVE_LOG = "CATCHJAX_NATIVE_LOG"  # in the child: where JAX's native runtime logs go


def route_native_log() -> None:
    """In a supervised child: file descriptor 2 (where JAX's C++ runtime writes its logs
    and stack dumps) goes to the log file; Python's own stderr (catchjax's messages,
    progress bars, tracebacks) stays on the terminal."""
    where = os.environ.get(NATIVE_LOG)
    if not where:
        return
    terminal = os.dup(2)
    log = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = os.fdopen(terminal, "w", buffering=1)


def _die_with_parent() -> None:
    """In the child, before it runs: a kill of the supervising process (a scheduler
    ending the job) ends the child too (Linux's parent-death signal)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the child outlives a killed supervisor


def supervise(argv: list[str], timeout: float, process_id) -> int:
    """Run this command in a child process and turn the ways JAX's distributed runtime
    ends a process (an abort with a C++ stack when a peer dies, when the others never
    join, or when the coordinator goes away) into one line that says what happened and
    what to do. The child's own output passes through; JAX's native log goes to a file."""
    import signal

    fd, phase_file = tempfile.mkstemp(prefix="catchjax-phase-")
    os.close(fd)
    log = Path(tempfile.gettempdir()) / f"catchjax-jax-{os.getpid()}.log"
    env = {**os.environ, SUPERVISED: phase_file, NATIVE_LOG: str(log)}
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child
    try:
        rc = subprocess.call([sys.executable, "-m", "catchjax.cli", *argv], env=env,
                             preexec_fn=_die_with_parent)
        phase = Path(phase_file).read_text().strip()
    finally:
        signal.signal(signal.SIGINT, previous)
        Path(phase_file).unlink(missing_ok=True)
    if rc >= 0:
        log.unlink(missing_ok=True)
        return rc
    who = f"process {process_id}" if process_id is not None else "this process"
    if phase == "joining":
        what = (f"the processes of the run did not all join within --init-timeout {timeout:g} "
                f"s ({who} waited): start every process with the same command and "
                f"--coordinator, each with its own --process-id")
    elif phase == "running":
        what = (f"another process of the run (or the coordinator, process 0) stopped, and "
                f"JAX's runtime ended {who}. Finished chunks are kept: run the same command "
                f"on every process again to resume")
    else:
        what = f"{who} was ended by signal {-rc} before it joined the others"
    print(f"catchjax: error: {what} (JAX's log: {log})", file=sys.stderr)
    return 2
