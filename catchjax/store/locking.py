"""An exclusive lock on a folder, held by one writer at a time across processes.

Ask/tell searches are driven by many workers at once (a cluster's training jobs each
tell a result when they finish). Every operation that reads a search folder and writes
it back holds this lock for the whole read-change-write, so no writer replaces what
another has just written (optuna's file storage serializes its journal the same way).

The lock is ``fcntl.flock`` on a file that stays in the folder. Such a lock belongs to
the open file, not to the process: two handles in one program exclude each other like
two programs do, and the kernel releases it when its holder dies (a SIGKILL leaves no
stale lock). The file also records who holds it, for the timeout message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import socket
import sys
import time
from pathlib import Path

from catchjax.errors import CatchjaxError

DEFAULT_TIMEOUT = 120.0  # seconds; a step under the lock takes well under one


def timeout_value(timeout) -> float:
    if isinstance(timeout, bool):
        raise CatchjaxError(f"the lock timeout is a number of seconds, got {timeout!r}")
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise CatchjaxError(f"the lock timeout is a number of seconds, got {timeout!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise CatchjaxError(f"the lock timeout must be a finite number >= 0, got {timeout!r}")
    return value


def _holder(lock_file: Path) -> str:
    try:
        info = json.loads(lock_file.read_text())
        held = time.time() - float(info["since"])
        return (f"process {info['pid']} on {info['host']} ({info['command']}), holding it for "
                f"{held:.0f} s")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def hold(lock_file, *, timeout=DEFAULT_TIMEOUT, what: str = "folder",
         read_only_ok: bool = False):
    """Hold the exclusive lock on ``lock_file`` (created if missing) inside the block;
    wait at most ``timeout`` seconds for it, then raise a :class:`CatchjaxError` that
    names the holder. ``read_only_ok``: in a folder this process may not write (a
    collaborator's search on a shared file system), run the block without the lock
    (reading only; the folder's manifest always names a complete state)."""
    timeout = timeout_value(timeout)
    lock_file = Path(lock_file)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides
    except OSError as exc:
        if read_only_ok and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            yield
            return
        raise CatchjaxError(f"cannot open the lock file {lock_file} ({exc.strerror}); the "
                            f"{what} must be writable") from None
    try:
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise CatchjaxError(f"cannot lock {lock_file} ({exc.strerror}); a file "
                                        f"system without locks?") from None
            if time.monotonic() >= deadline:
                raise CatchjaxError(
                    f"the {what} is locked by {_holder(lock_file)}; waited {timeout:g} s. "
                    f"Wait for it to finish (a lock is released when its process ends), or "
                    f"give a longer lock timeout"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:3])[:120]
                or "python"}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
