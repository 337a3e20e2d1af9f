"""catchjax.store.provenance: every summary and manifest says what computed it, and a
result computed otherwise is never taken for this one (resume, the same command again)."""

from __future__ import annotations

import json

import jax
import pytest

from catchjax import AskTell, cli
from catchjax.cli import sweep as cli_sweep
from catchjax.errors import CatchjaxError
from catchjax.runs import progress, sweeps
from catchjax.store import provenance
from tests.helpers import SWEEP


def test_a_record_names_versions_platform_devices_flags_and_options():
    rec = provenance.record()
    assert rec["versions"]["jax"] == jax.__version__ and rec["versions"]["catchjax"]
    on = rec["computed_on"]
    assert on["platform"] == "cpu" and on["device_count"] == len(jax.devices())
    assert on["process_count"] == 1 and on["device_kind"] == jax.devices()[0].device_kind
    # catchjax's CPU numerics option (runs.numerics) and the suite's own XLA flag
    assert on["compiler_options"] == {"xla_cpu_experimental_ynn_fusion_type": ""}
    assert "--xla_backend_optimization_level=0" in on["xla_flags"]
    assert set(on["jax_settings"]) >= {"jax_enable_x64", "jax_default_matmul_precision"}
    json.dumps(rec)  # goes into JSON files as it is


def test_the_host_cpu_is_read_as_linux_lists_it():
    """The CPU's vector sets change CATCH's and the DQN's bits (docs/usage.md): a CPU
    record names the model and the sets XLA may compile for, from x86 and Arm listings."""
    x86 = ("processor\t: 0\nmodel name\t: AMD EPYC  7B13\nflags\t\t: fpu sse4_2 avx avx2 fma "
           "avx512f avx512bw sha_ni\n\nprocessor\t: 1\nmodel name\t: other\nflags\t: fpu\n")
    assert provenance.parse_cpuinfo(x86) == (
        "AMD EPYC 7B13", ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"])
    arm = "processor\t: 0\nFeatures\t: fp asimd asimdhp sve crc32\nCPU part\t: 0xd40\n"
    assert provenance.parse_cpuinfo(arm) == (None, ["asimd", "asimdhp", "sve"])
    assert provenance.parse_cpuinfo("") == (None, [])
    cpu = provenance.computed_on()["host_cpu"]  # the suite runs on the CPU platform
    assert cpu == provenance.host_cpu() and cpu["machine"]
    assert cpu["simd"] is None or set(cpu["simd"]) <= set(provenance._SIMD)


def test_differences_name_each_changed_field():
    then = {"versions": {"jax": "0.10.1", "numpy": "2.4"}, "computed_on": {"device_count": 1}}
    now = {"versions": {"jax": "0.10.2", "numpy": "2.4"},
           "computed_on": {"device_count": 2, "platform": "cpu"}}
    assert provenance.differences(then, now) == [
        "computed_on.device_count: 1 -> 2", "computed_on.platform: absent -> cpu",
        "versions.jax: 0.10.1 -> 0.10.2"]
    assert provenance.differences(now, now) == []


def test_summary_and_search_manifest_carry_the_record(tmp_path, syn_nb201):
    res = sweeps.sweep("random", syn_nb201, trials=2, budget=3)
    s = res.summary()
    assert s["computed_on"] == provenance.computed_on() and s["versions"]["jax"]
    search = AskTell.start("random", "nb201", budget=3, state_dir=tmp_path / "s")
    search.ask(1)
    meta = json.loads((tmp_path / "s" / "catchjax-search.json").read_text())
    assert meta["computed_on"]["platform"] == "cpu" and meta["versions"]["catchjax"]


def test_the_same_command_computed_by_another_jax_is_noticed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_sweep, "_revision", lambda: "abc1234")  # a clean checkout
    out = tmp_path / "o"
    args = [*SWEEP, "--out", str(out)]
    assert cli.main(args) == 0
    assert cli.main(args) == 0 and "already holds this run" in capsys.readouterr().out
    real = provenance.versions
    monkeypatch.setattr(provenance, "versions", lambda: {**real(), "jax": "99.0"})
    before = (out / "summary.json").read_bytes()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"versions.jax: {jax.__version__} -> 99.0" in err and "--overwrite" in err
    assert (out / "summary.json").read_bytes() == before  # nothing was replaced


def test_progress_under_other_xla_flags_is_refused_and_other_device_counts_noted(
        tmp_path, syn_nb201):
    cfg = sweeps.methods.resolve("random", syn_nb201, budget=3)
    mine = progress.fingerprint("random", cfg, syn_nb201, 0, 4, 2, None)
    one = {"device_count": 1, "process_count": 1}
    progress.SweepProgress(tmp_path / "p", mine, one)
    flags = {**mine, "computed_on": {**mine["computed_on"], "xla_flags": ["--xla_x=1"]}}
    with pytest.raises(CatchjaxError, match=r"computed_on.xla_flags: .* -> --xla_x=1"):
        progress.SweepProgress(tmp_path / "p", flags, one)
    two = progress.SweepProgress(tmp_path / "p", mine, {"device_count": 2, "process_count": 2})
    assert two.device_note(0) is None  # nothing restored, nothing to say
    assert "computed on 1 devices in 1 processes; this run has 2 in 2" in two.device_note(3)
    assert progress.SweepProgress(tmp_path / "p", mine, one).device_note(3) is None


def test_progress_from_another_cpu_resumes_with_a_note_naming_both(tmp_path, syn_nb201):
    """Chunks computed on another CPU are kept (random search's bits do not depend on it)
    and the resume says which CPU computed them; progress of an older catchjax, which
    recorded no CPU, resumes without a note."""
    cfg = sweeps.methods.resolve("random", syn_nb201, budget=3)
    mine = progress.fingerprint("random", cfg, syn_nb201, 0, 4, 2, None)
    here = {"device_count": 1, "process_count": 1,
            "host_cpu": {"machine": "x86_64", "model": "AMD EPYC", "simd": ["avx", "avx2"]}}
    progress.SweepProgress(tmp_path / "p", mine, here)
    there = {**here, "host_cpu": {"machine": "x86_64", "model": "Intel Xeon",
                                  "simd": ["avx", "avx2", "avx512f"]}}
    note = progress.SweepProgress(tmp_path / "p", mine, there).device_note(2)
    assert "computed on another CPU (AMD EPYC, avx2; this one: Intel Xeon, avx512f)" in note
    assert "devices" not in note  # the counts are the same
    old = tmp_path / "old"
    progress.SweepProgress(old, mine, {"device_count": 1, "process_count": 1})
    assert progress.SweepProgress(old, mine, there).device_note(2) is None


def test_the_same_command_on_another_cpu_is_noticed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_sweep, "_revision", lambda: "abc1234")
    out = tmp_path / "o"
    args = [*SWEEP, "--out", str(out)]
    assert cli.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["computed_on"]["host_cpu"] == provenance.host_cpu()
    real = provenance.host_cpu()
    monkeypatch.setattr(provenance, "host_cpu", lambda: {**real, "model": "Another CPU"})
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"computed_on.host_cpu.model: {real['model']} -> Another CPU" in err
    assert "--overwrite" in err


def test_a_fresh_process_records_the_compiler_options_it_compiles_with():
    """The same command run again in a new process compared its results' record with one
    that lacked the compiler options (catchjax.runs.numerics was not imported yet), so a
    quickstart run twice said "computed otherwise"."""
    import os
    import subprocess
    import sys

    code = ("import json; from catchjax.cli.sweep import _record_now; "
            "print(json.dumps(_record_now()['computed_on']['compiler_options']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}).stdout
    from catchjax.runs import numerics

    assert json.loads(out.strip().splitlines()[-1]) == numerics.compiler_options("cpu")
