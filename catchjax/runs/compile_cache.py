"""JAX's persistent compilation cache for the command line.

A CPU sweep spends ~10 s compiling before tens of seconds of work, and every CLI call
would pay it again. JAX can keep compiled executables on disk keyed by the program, the
compiler options and the jax/jaxlib versions, so a second call with the same shapes
loads instead of compiling. The CLI turns it on by default in the user cache folder
(``catchjax --no-compile-cache …`` or ``CATCHJAX_COMPILE_CACHE=off`` turn it off;
``CATCHJAX_COMPILE_CACHE=DIR`` moves it). The Python API uses the same folder from its
first compile on (:func:`use_default`: a sweep, a training, an ask/tell search), unless
JAX already has a cache folder (yours is kept) or the variable says ``off``; importing
catchjax changes no JAX setting.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from catchjax.errors import CatchjaxError

ENV = "CATCHJAX_COMPILE_CACHE"
OFF = ("off", "0", "no", "false", "none")
# JAX keeps only compilations that took at least this long (its own default is 1 s): a
# sweep's search compiles for seconds, the small helper programs around it in
# milliseconds, where a load saves little and each would be a file. A test suite, which
# compiles thousands of small programs in many processes, sets it to 0.
MIN_ENV = "CATCHJAX_COMPILE_CACHE_MIN_SECONDS"
DEFAULT_MIN_SECONDS = 0.5


def default_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("catchjax")) / "jax-compile"


def resolve(disabled: bool = False) -> Path | None:
    """The cache folder the CLI should use, or None when turned off."""
    value = os.environ.get(ENV, "").strip()
    if disabled or value.lower() in OFF:
        return None
    return Path(value).expanduser() if value else default_dir()


def _make(path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatchjaxError(
            f"cannot use {path} for the compilation cache ({exc.strerror}); set {ENV} to a "
            f"writable folder, or to 'off'") from None
    return path


def min_seconds() -> float:
    """The shortest compilation the cache keeps: :data:`MIN_ENV`, else 0.5 s."""
    value = os.environ.get(MIN_ENV, "").strip()
    if not value:
        return DEFAULT_MIN_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds < float("inf"):
        raise CatchjaxError(
            f"{MIN_ENV}={value!r} is not a number of seconds: set it to the shortest "
            f"compilation the cache should keep (e.g. 0 for all of them, 0.5 by default)")
    return seconds


def enable(path, min_compile_seconds: float | None = None) -> Path:
    """Keep every compilation that took at least ``min_compile_seconds`` (by default
    :func:`min_seconds`) in ``path``."""
    import jax

    if min_compile_seconds is None:
        min_compile_seconds = min_seconds()
    path = _make(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


_DEFAULT_CHECKED = False


def settle(where: Path | None) -> Path | None:
    """The CLI's decision (a folder, or None for off), kept for the whole process. Before
    JAX is imported it is given to JAX through its environment variables, so that a
    command refusing its arguments never waits for JAX's import."""
    global _DEFAULT_CHECKED
    _DEFAULT_CHECKED = True
    if where is None:
        return None
    seconds = min_seconds()  # a malformed value is refused before anything is made
    if "jax" in sys.modules:
        return enable(where)
    where = _make(where)
    os.environ.update({"JAX_COMPILATION_CACHE_DIR": str(where),
                       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": repr(seconds),
                       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    return where


def use_default() -> Path | None:
    """For the Python API, before its first compile: the CLI's cache folder, unless JAX
    already has one or :data:`ENV` is off. An unusable folder never stops a search."""
    global _DEFAULT_CHECKED
    if _DEFAULT_CHECKED:
        return None
    _DEFAULT_CHECKED = True
    where = resolve()
    if where is None or _jax_cache_dir():
        return None
    min_seconds()  # a malformed value is an error, not a silent default
    try:
        return enable(where)
    except CatchjaxError:
        return None


def _jax_cache_dir() -> str | None:
    """The cache folder JAX has now (one a user set keeps precedence)."""
    import jax

    return jax.config.jax_compilation_cache_dir
