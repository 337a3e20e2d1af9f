"""What computed a result: library versions, platform, devices, XLA flags and the
compiler options catchjax compiles with, recorded in every summary and manifest.

Two results of the same seeds may differ in their last bits when any of these differ
(another XLA arranges a sum differently; a partitioned program over two devices computes
CATCH differently from one device), and one ulp can make CATCH's controller choose
another network. The record lets a reader explain such a difference later, and lets
catchjax refuse to mix the two: a resumed sweep's chunks, "the same command again".
"""

from __future__ import annotations

import os

# catchjax.runs.numerics (a layer above) registers the function that says which compiler
# options catchjax passes on a platform, so the record names them without importing it.
_compiler_options = None

# JAX settings that change what a program computes
_JAX_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_threefry_partitionable",
                 "jax_default_prng_impl")
_PACKAGES = ("catchjax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy")


def set_compiler_options(fn) -> None:
    """``fn(platform) -> dict | None``: the options every catchjax compile gets there."""
    global _compiler_options
    _compiler_options = fn


def versions() -> dict:
    """Python's and the computing libraries' versions."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def computed_on(devices=None) -> dict:
    """The platform and devices (default: all of JAX's), XLA's flags, catchjax's compiler
    options and the JAX settings a computation ran under."""
    import jax

    devices = list(jax.devices() if devices is None else devices)
    platform = devices[0].platform
    options = _compiler_options(platform) if _compiler_options is not None else None
    settings = {}
    for name in _JAX_SETTINGS:
        value = getattr(jax.config, name, None)
        settings[name] = value if value is None or isinstance(value, (bool, int)) else str(value)
    return {
        "platform": platform,
        "device_kind": ", ".join(sorted({d.device_kind for d in devices})),
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", "").split(),
        "compiler_options": options or {},
        "jax_settings": settings,
    }


def record(devices=None) -> dict:
    """``versions`` and ``computed_on`` together, as summaries and manifests keep them."""
    return {"versions": versions(), "computed_on": computed_on(devices)}


def differences(saved: dict, now: dict) -> list[str]:
    """What differs between two records (or parts of them), as ``name: then -> now``
    lines; keys a record of an older catchjax lacks are named as absent."""
    out = []

    def walk(a, b, where):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, "absent"), b.get(k, "absent"), f"{where}.{k}" if where else k)
        elif a != b:
            out.append(f"{where}: {_short(a)} -> {_short(b)}")

    walk(saved, now, "")
    return out


def _short(x) -> str:
    if isinstance(x, list):
        x = " ".join(map(str, x)) or "(none)"
    text = str(x)
    return text if len(text) <= 60 else text[:57] + "..."
