"""Several processes (hosts) as one sweep, on JAX's own runtime (``jax.distributed``).

Every process runs the same command with its own process id; after
:func:`initialize`, ``jax.devices()`` lists the devices of all processes and a sweep's
``trials`` mesh axis spans them (:mod:`catchjax.sweeps`): each process computes the
trials on its devices, the results are gathered with a collective, and only process 0
writes files. On the CPU the collectives run over gloo; on GPUs over NCCL; on a TPU pod
slice, SLURM or Open MPI, JAX finds the coordinator, process count and id itself
(``auto=True``, ``catchjax sweep --distributed``); elsewhere ``JAX_COORDINATOR_ADDRESS``
or the flags name them.
"""

from __future__ import annotations

import socket
import time

from catchjax.errors import CatchjaxError


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


def wait_for_coordinator(host: str, port: int, timeout: float) -> None:
    """Process 0 hosts the coordinator; the others wait for its port to open. JAX itself
    aborts the whole process when the coordinator never answers, so this check comes
    first and fails with an error that says what to do."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise CatchjaxError(
                    f"the coordinator {host}:{port} did not answer within {timeout:g} s: start "
                    f"process 0 with the same --coordinator first, and check the address, "
                    f"the port and the firewall") from None
            time.sleep(0.2)


def initialize(coordinator=None, num_processes=None, process_id=None, timeout: float = 300,
               auto: bool = False) -> bool:
    """Join the processes of one run; returns whether more than one process takes part.
    Call before any JAX computation."""
    check(coordinator, num_processes, process_id)
    if coordinator is None and not auto:
        return False
    import jax

    # CPU processes exchange results over gloo (the default CPU client has no collectives)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator is not None:
        host, port = parse_coordinator(coordinator)
        if process_id != 0:
            wait_for_coordinator(host, port, timeout)
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=int(max(1, timeout)))
    else:
        try:
            jax.distributed.initialize(initialization_timeout=int(max(1, timeout)))
        except (ValueError, RuntimeError) as exc:
            raise CatchjaxError(
                f"--distributed: JAX could not detect the cluster ({exc}); name it with "
                f"--coordinator, --num-processes and --process-id") from None
    return jax.process_count() > 1
