"""Writing output folders and files without ever losing the user's data.

One helper for every folder catchjax writes (sweep results, agent checkpoints):

* :func:`check_output_dir` runs before any work: it refuses a path that is ``""``, ``.``,
  ``/``, the home folder or a folder holding the current one; an existing non-empty folder
  without ``overwrite``; and, even with ``overwrite``, a folder that catchjax did not
  write (no marker file, or files catchjax never writes). It also makes sure the parent
  is writable, so a bad ``--out`` fails in a second, not after the compile.
* :func:`replace_dir` moves a completed temporary folder into place. An old folder is
  renamed aside first and deleted only after the new one is in place, so a crash at any
  moment leaves either the old or the new results.
* :func:`atomic_write_bytes` writes a file through a temporary name and a rename.

Temporary folders are named ``.<name>.catchjax-tmp-<pid>-*`` beside the target;
leftovers of killed processes are removed by the next write to the same target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from catchjax.errors import CatchjaxError

TMP_TAG = "catchjax-tmp"
OLD_TAG = "catchjax-old"


def _forbidden_reason(path: Path) -> str | None:
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        return "it is the root of the file system"
    if resolved == Path.home().resolve():
        return "it is your home folder"
    if resolved == cwd:
        return "it is the current folder"
    if resolved in cwd.parents:
        return "it holds the current folder"
    return None


def check_output_dir(path, overwrite: bool, *, owned: set[str], marker: str, what: str,
                     flag: str = "--overwrite") -> Path:
    """Refuse an output folder that catchjax may not write (see module docstring)."""
    if path is None or str(path).strip() == "":
        raise CatchjaxError(f"the {what} folder is empty (''); name a new folder")
    path = Path(path)
    reason = _forbidden_reason(path)
    if reason is not None:
        raise CatchjaxError(
            f"refusing to write the {what} to {str(path)!r}: {reason}. Name a new folder "
            f"inside it, e.g. {str(path / 'run1')!r}"
        )
    if path.exists() and not path.is_dir():
        raise CatchjaxError(f"{path} exists and is not a folder; name a new folder")
    if path.is_dir():
        entries = sorted(e.name for e in path.iterdir())
        if entries and not overwrite:
            raise CatchjaxError(
                f"{path} already holds results; choose another folder or pass {flag} to "
                f"replace them"
            )
        foreign = [e for e in entries if e not in owned]
        if entries and (marker not in entries or foreign):
            shown = ", ".join((foreign or entries)[:5])
            raise CatchjaxError(
                f"{path} holds files catchjax did not write ({shown}); {flag} only replaces "
                f"a {what} folder that catchjax wrote. Choose another folder"
            )
    ensure_writable_parent(path)
    return path


def ensure_writable_parent(path: Path) -> None:
    """Create the parent folders of ``path`` and check a file can be written there."""
    parent = Path(path).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{TMP_TAG}-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CatchjaxError(
            f"cannot write into {parent} ({exc.strerror or type(exc).__name__}); choose "
            f"another output folder"
        ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_leftovers(path) -> None:
    """Remove temporary folders of ``path`` left by catchjax processes that have died."""
    path = Path(path).absolute()
    if not path.parent.is_dir():
        return
    for tag in (TMP_TAG, OLD_TAG):
        for leftover in path.parent.glob(f".{path.name}.{tag}-*"):
            try:
                pid = int(leftover.name[len(f".{path.name}.{tag}-"):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(leftover, ignore_errors=True)


def make_temp_dir(path) -> Path:
    """A new temporary folder beside ``path``, for writing its replacement."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.{TMP_TAG}-{os.getpid()}-",
                                 dir=path.parent))


def replace_dir(tmp: Path, path) -> Path:
    """Move the completed folder ``tmp`` to ``path``; an old ``path`` is set aside first
    and deleted only once the new one is in place."""
    path = Path(path).absolute()
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{OLD_TAG}-{os.getpid()}-",
                                    dir=path.parent))
        os.replace(path, old / path.name)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old / path.name, path)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def write_dir(path, fill, *, overwrite: bool, owned: set[str], marker: str, what: str) -> Path:
    """Check ``path``, call ``fill(tmp_folder)`` to write the new contents, move them in.

    Nothing at ``path`` is touched until ``fill`` has finished; on any error (or Ctrl-C)
    the temporary folder is removed and the old contents stay.
    """
    path = check_output_dir(path, overwrite, owned=owned, marker=marker, what=what)
    tmp = make_temp_dir(path)
    try:
        fill(tmp)
        return replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``path`` through a temporary file and a rename (never half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TMP_TAG}-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
