"""What computed a result: library versions, platform, devices, XLA flags and the
compiler options catchjax compiles with, recorded in every summary and manifest.

Two results of the same seeds may differ in their last bits when any of these differ
(another XLA arranges a sum differently; a partitioned program over two devices computes
CATCH differently from one device), and one ulp can make CATCH's controller choose
another network. The record lets a reader explain such a difference later, and lets
catchjax refuse to mix the two: a resumed sweep's chunks, "the same command again".
"""

from __future__ import annotations

import functools
import os
import platform as _platform

# catchjax.runs.numerics (a layer above) registers the function that says which compiler
# options catchjax passes on a platform, so the record names them without importing it.
_compiler_options = None

# JAX settings that change what a program computes
_JAX_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_threefry_partitionable",
                 "jax_default_prng_impl")
_PACKAGES = ("catchjax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy")
# Vector instruction sets XLA's CPU compiler targets when the host has them (it compiles
# for the host): another set (vector width, fused multiply-add) rounds some arithmetic
# differently, and CATCH's and the DQN's training then end in other bits
# (dev/trace_hashes.py: 10 of 18 hashes differ between an AVX2-only AMD EPYC and the
# machine the baseline came from, same versions and flags; the same 10 when XLA is
# capped at AVX on the EPYC).
_SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
         "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
         "asimd", "asimdhp", "sve", "sve2", "sme")


def set_compiler_options(fn) -> None:
    """``fn(platform) -> dict | None``: the options every catchjax compile gets there."""
    global _compiler_options
    _compiler_options = fn


def versions() -> dict:
    """Python's and the computing libraries' versions (those of the modules this process
    has loaded: a package upgraded while it runs is still the old one here)."""
    return dict(_read_versions())


@functools.cache
def _read_versions() -> tuple:
    # read once per process: each lookup parses a package's metadata file, and ask/tell
    # records provenance at every save (20 ms a save: a fifth of an ask/tell step's time
    # for the random method)
    import importlib.metadata as md
    import platform

    out = [("python", platform.python_version())]
    for pkg in _PACKAGES:
        try:
            out.append((pkg, md.version(pkg)))
        except md.PackageNotFoundError:
            out.append((pkg, None))
    return tuple(out)


def parse_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """The CPU's model name and its vector instruction sets (of :data:`_SIMD`) from the
    text of Linux's /proc/cpuinfo (x86 ``model name``/``flags``, Arm ``Features``)."""
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = " ".join(value.split()) or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, [f for f in _SIMD if f in flags]


def host_cpu() -> dict:
    """The CPU a CPU computation ran on: architecture, model and the vector instruction
    sets XLA may compile for (``simd`` is None where the OS does not list them). In a
    run over several processes, the record is process 0's."""
    machine, model, simd = _read_host_cpu()
    return {"machine": machine, "model": model, "simd": None if simd is None else list(simd)}


def describe_cpu(cpu: dict) -> str:
    """A :func:`host_cpu` record in a few words: its model and its widest vector set."""
    simd = cpu.get("simd") or []
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2", "sme", "sve2", "sve",
                               "asimd") if f in simd), "vector sets unknown")
    return f"{cpu.get('model')}, {widest}"


@functools.cache
def _read_host_cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model, simd = parse_cpuinfo(f.read())
        simd = tuple(simd)
    except OSError:  # not Linux
        model, simd = None, None
    return _platform.machine() or None, model or _platform.processor() or None, simd


def computed_on(devices=None) -> dict:
    """The platform and devices (default: all of JAX's), XLA's flags, catchjax's compiler
    options and the JAX settings a computation ran under; on the CPU platform also the
    host CPU (:func:`host_cpu`), whose instruction set can change a trial's bits."""
    import jax

    devices = list(jax.devices() if devices is None else devices)
    platform = devices[0].platform
    options = _compiler_options(platform) if _compiler_options is not None else None
    settings = {}
    for name in _JAX_SETTINGS:
        value = getattr(jax.config, name, None)
        settings[name] = value if value is None or isinstance(value, (bool, int)) else str(value)
    record = {
        "platform": platform,
        "device_kind": ", ".join(sorted({d.device_kind for d in devices})),
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", "").split(),
        "compiler_options": options or {},
        "jax_settings": settings,
    }
    if platform == "cpu":  # (an accelerator's bits do not depend on its host's CPU)
        record["host_cpu"] = host_cpu()
    return record


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
