"""Writing output folders and files without ever losing the user's data.

One helper for every folder catchjax writes (sweep results, agent checkpoints):

* :func:`check_output_dir` runs before any work: it refuses a path that is ``""``, ``.``,
  ``/``, the home folder or a folder holding the current one; an existing non-empty folder
  without ``overwrite``; and, even with ``overwrite``, a folder that catchjax did not
  write. Ownership comes from the record catchjax writes into every output folder
  (``.catchjax-written.json``: the kind of folder, the run's id, every file it wrote):
  a folder without one, or with any file the record does not list, is never replaced.
  A link is followed: the folder it points to is what gets replaced. It also makes sure
  the parent is writable, so a bad ``--out`` fails in a second, not after the compile.
* :func:`replace_dir` moves a completed temporary folder into place. An old folder is
  renamed aside first and deleted only after the new one is in place, so a crash at any
  moment leaves either the old or the new results.
* :func:`atomic_write_bytes` writes a file through a temporary name and a rename.

Temporary folders are named ``.<name>.catchjax-tmp-<pid>-*`` beside the target;
leftovers of killed processes are removed by the next write to the same target.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

from catchjax.errors import CatchjaxError

TMP_TAG = "catchjax-tmp"
OLD_TAG = "catchjax-old"
RECORD = ".catchjax-written.json"  # in every folder catchjax writes: what it holds


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
    if path.is_symlink():  # the folder it points to is the one replaced, not the link
        path = path.resolve()
    restore_set_aside(path)
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
                f"{path} already holds results{_what_is_there(path, marker)}; choose another "
                f"folder or pass {flag} to replace them"
            )
        if entries:
            foreign = not_written_by_catchjax(path, what, owned)
            if foreign:
                raise CatchjaxError(
                    f"{path} holds {foreign}; {flag} only replaces a {what} folder that "
                    f"catchjax wrote, and never deletes files it did not write. Choose "
                    f"another folder"
                )
    ensure_writable_parent(path)
    return path


def _what_is_there(path: Path, marker: str) -> str:
    """" (a rea run on nb201/cifar10, 500 trials, written ...)" from the folder's marker
    file when it is one catchjax wrote, so that --overwrite's hint says what it would
    replace; "" when there is nothing to say (never an error)."""
    import json

    try:
        meta = json.loads((path / marker).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(meta, dict) or not isinstance(meta.get("method"), str):
        return ""
    where = "/".join(str(meta[k]) for k in ("benchmark", "task") if meta.get(k)) or \
        meta.get("domain") or ""
    bits = [f"{meta['trials']} trials"] if isinstance(meta.get("trials"), int) else []
    if isinstance(meta.get("written_at"), str):
        bits.append(f"written {meta['written_at']}")
    return (f" (a {meta['method']} {meta.get('kind') or 'run'}"
            + (f" on {where}" if where else "") + (f", {', '.join(bits)}" if bits else "")
            + ")")


def _relative_entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_record(folder, what: str, patterns: tuple[str, ...] = ()) -> None:
    """Record in ``folder`` that catchjax wrote it: the kind of folder, who wrote it and
    when, every file and folder in it, and ``patterns`` (globs) of files it will add
    later. Only what a record lists is ever replaced with ``--overwrite``."""
    import json
    import socket
    import time
    import uuid

    import catchjax

    folder = Path(folder)
    record = {"kind": "catchjax output", "what": what, "run_id": uuid.uuid4().hex,
              "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "host": socket.gethostname(), "pid": os.getpid(),
              "catchjax": catchjax.__version__,
              "files": [f for f in _relative_entries(folder) if f != RECORD],
              "patterns": list(patterns)}
    atomic_write_bytes(folder / RECORD, json.dumps(record, indent=1).encode())


def not_written_by_catchjax(path: Path, what: str, owned: set[str] = frozenset()) -> str:
    """"" when catchjax's record in ``path`` lists everything in it (and names this kind
    of folder); otherwise what is not ours, for the refusal."""
    import fnmatch
    import json

    try:
        record = json.loads((path / RECORD).read_text())
        listed = set(record["files"])
        patterns = list(record.get("patterns", []))
        ok = record.get("kind") == "catchjax output" and record.get("what") == what
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = sorted(e.name for e in path.iterdir() if e.name != RECORD)
        names = [e for e in entries if e not in owned] or entries
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        return (f"files catchjax did not write ({', '.join(names[:5])}{more}) and no record "
                f"that catchjax wrote the folder ({RECORD}; a folder that an earlier catchjax "
                f"wrote without one is not replaced either: delete it yourself)")
    if not ok:
        return f"a {record.get('what')!r} folder, not a {what} folder"
    foreign = [f for f in _relative_entries(path) if f != RECORD and f not in listed
               and not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        return f"files catchjax did not write ({', '.join(foreign[:5])}{more})"
    return ""


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


@functools.cache
def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (setting
    and resetting it would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _leftovers(path: Path, tag: str):
    """(folder, pid) of the temporary or set-aside folders of ``path`` whose writing
    process has died."""
    for leftover in path.parent.glob(f".{path.name}.{tag}-*"):
        try:
            pid = int(leftover.name[len(f".{path.name}.{tag}-"):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid) and leftover.is_dir():
            yield leftover, pid


def restore_set_aside(path) -> Path | None:
    """When ``path`` is missing but a process died between setting its complete old
    copy aside and moving the new one in (:func:`replace_dir`), move the copy back, say
    so on stderr and return ``path``. Results are never lost to a crash, and nothing
    starts anew over them."""
    path = Path(path).absolute()
    if path.exists() or path.is_symlink() or not path.parent.is_dir():
        return None
    copies = [(aside / path.name) for aside, _ in _leftovers(path, OLD_TAG)
              if (aside / path.name).is_dir()]
    if not copies:
        return None
    newest = max(copies, key=lambda p: p.stat().st_mtime)
    os.replace(newest, path)
    shutil.rmtree(newest.parent, ignore_errors=True)
    print(f"catchjax: {path} was missing after a crash while it was being replaced; its "
          f"complete earlier copy was moved back from {newest.parent}", file=sys.stderr)
    return path


def clean_leftovers(path) -> None:
    """Remove temporary folders of ``path`` left by catchjax processes that have died.
    A set-aside old copy is removed only when ``path`` itself is in place (otherwise it
    is the only copy: :func:`restore_set_aside` moves it back)."""
    path = Path(path).absolute()
    if not path.parent.is_dir():
        return
    for leftover, _ in list(_leftovers(path, TMP_TAG)):
        shutil.rmtree(leftover, ignore_errors=True)
    if path.exists():
        for leftover, _ in list(_leftovers(path, OLD_TAG)):
            shutil.rmtree(leftover, ignore_errors=True)


def make_temp_dir(path) -> Path:
    """A new temporary folder beside ``path``, for writing its replacement."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{TMP_TAG}-{os.getpid()}-",
                                dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # the user's usual permissions, not mkdtemp's 0700
    return tmp


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
        write_record(tmp, what)
        return replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path) -> str:
    """SHA-256 of a file's bytes, read a megabyte at a time (files may be gigabytes)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path, data: bytes, *, durable: bool = False) -> None:
    """Write ``path`` through a temporary file and a rename (never half a file).
    ``durable``: also flush the file to disk before the rename (a manifest that others
    rely on after a power cut)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TMP_TAG}-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
