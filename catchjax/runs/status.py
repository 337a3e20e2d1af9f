"""A status line for the long silent parts of a command (compiling, training in one call).

On a terminal the line counts seconds while the work runs ("compiling the catch-sfs search
(63 trials per call) … 12 s") and is replaced by how it ended; elsewhere (a log file, CI)
it prints one line when the work starts and one when it ends. Nothing it does touches
the computation: results are the same with it on or off.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time


@contextlib.contextmanager
def working(what: str, enabled: bool = True, stream=None, every: float = 1.0):
    """Show ``what`` while the body runs; yields a dict whose ``"done"`` entry, if the
    body sets it, replaces the default ending ("done in N s")."""
    out = {}
    if not enabled:
        yield out
        return
    stream = stream or sys.stderr
    live = getattr(stream, "isatty", lambda: False)()
    t0 = time.perf_counter()
    stop = threading.Event()

    def tick():
        while not stop.wait(every):
            stream.write(f"\r{what} … {time.perf_counter() - t0:.0f} s")
            stream.flush()

    if live:
        stream.write(f"{what} …")
        stream.flush()
        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
    else:
        print(f"{what} …", file=stream, flush=True)
    try:
        yield out
    finally:
        stop.set()
        if live:
            thread.join()
        seconds = time.perf_counter() - t0
        end = out.get("done", f"done in {seconds:.1f} s")
        prefix = f"\r{what}: " if live else f"{what}: "
        stream.write(prefix + end + (" " * 8 if live else "") + "\n")
        stream.flush()
