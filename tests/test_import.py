import os
import pickle

import numpy as np
import pytest

from catchjax.benchmarks import importers, safe_pickle, tables
from catchjax.errors import CatchjaxError
from tests import official_layouts as layouts


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("layout", ["plain", "legacy", "zip", "bz2"])
def test_malicious_pickle_is_refused_not_executed(tmp_path, layout):
    marker = tmp_path / "pwned"
    payload = {"meta_archs": [_Evil(marker)]}
    path = tmp_path / "evil.pth"
    if layout == "plain":
        path.write_bytes(pickle.dumps(payload))
        load = safe_pickle.load_torch_file
    elif layout == "legacy":
        layouts.torch_save_legacy(payload, path)
        load = safe_pickle.load_torch_file
    elif layout == "zip":
        layouts.torch_save_zip(payload, path)
        load = safe_pickle.load_torch_file
    else:
        import bz2

        path = tmp_path / "evil.pickle.pbz2"
        with bz2.open(path, "wb") as f:
            pickle.dump(payload, f)
        load = safe_pickle.load_bz2_pickle
    with pytest.raises(safe_pickle.UnsafePickleError, match="refused to load .*system"):
        load(path)
    assert not marker.exists()
    with pytest.raises(CatchjaxError, match="refused"):
        importers.import_benchmark(path, "nats-topology" if layout == "bz2" else "nb201-pth",
                                   dest=tmp_path / "out")
    assert not marker.exists()


@pytest.mark.parametrize("save", [layouts.torch_save_zip, layouts.torch_save_legacy])
def test_torch_tensors_load_as_arrays(tmp_path, save):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {"w": layouts.FakeTensor(x), "wt": layouts.FakeTensor(x.T), "n": [1, 2.5, "s"]}
    save(obj, tmp_path / "t.pth")
    out = safe_pickle.load_torch_file(tmp_path / "t.pth")
    np.testing.assert_array_equal(out["w"], x)
    np.testing.assert_array_equal(out["wt"], x.T)
    assert out["n"] == [1, 2.5, "s"]


def _check_nb201(path):
    table = tables.read_npz(path, "nb201", tables.BENCHMARKS["nb201"].space)
    assert list(table.arch_str) == layouts.NB201_ARCHS
    # cifar10-valid 200 epochs: two seeds, base 80 + i and 81 + i -> mean 80.5 + i
    np.testing.assert_allclose(table.column("cifar10_valid_valid_acc_200"), [80.5, 81.5, 82.5])
    np.testing.assert_allclose(table.column("cifar10_valid_train_acc_200"), [85.5, 86.5, 87.5])
    np.testing.assert_allclose(table.column("cifar10_test_acc_200"), [81.5, 82.5, 83.5])
    np.testing.assert_allclose(table.column("cifar100_test_acc_200"), [59.0, 60.0, 61.0])
    np.testing.assert_allclose(table.column("imagenet16_valid_acc_12"), [20.0, 21.0, 22.0])
    np.testing.assert_allclose(table.column("cifar10_valid_valid_acc_12"), [60.5, 61.5, 62.5])
    np.testing.assert_allclose(table.column("latency_cifar10_ms"), [10.0] * 3, rtol=1e-6)


@pytest.mark.parametrize("save", [layouts.torch_save_zip, layouts.torch_save_legacy])
def test_import_nb201_pth(tmp_path, save):
    src = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    save(layouts.nb201_pth_dict(), src)
    written = importers.import_benchmark(src, dest=tmp_path / "data")
    assert written == [tmp_path / "data" / "nb201.npz"]
    _check_nb201(written[0])


def test_import_nats_single_file_and_folder(tmp_path):
    src = tmp_path / "NATS-tss-v1_0-3ffb9-simple.pickle.pbz2"
    layouts.nats_single_file(src)
    _check_nb201(importers.import_benchmark(src, dest=tmp_path / "a")[0])
    for with_meta in (True, False):
        folder = tmp_path / f"NATS-tss-full-{with_meta}"
        layouts.nats_folder(folder, with_meta)
        _check_nb201(importers.import_benchmark(folder, dest=tmp_path / f"b{with_meta}")[0])


@pytest.mark.parametrize("tensors", [False, True])
def test_import_transnas_pth(tmp_path, tensors):
    src = tmp_path / "transnas-bench_v10141024.pth"
    layouts.torch_save_zip(layouts.transnas_pth_dict(tensor_metrics=tensors), src)
    written = importers.import_benchmark(src, dest=tmp_path / "data")
    assert sorted(p.name for p in written) == ["transnas101_macro.npz", "transnas101_micro.npz"]
    for ss, path in (("micro", written[0]), ("macro", written[1])):
        bench = f"transnas-{ss}"
        table = tables.read_npz(path, bench, tables.BENCHMARKS[bench].space)
        rows = [table.row_of(a) for a in layouts.TRANSNAS_ARCHS[ss]]
        np.testing.assert_allclose(table.column("class_scene__valid_top1")[rows], [30.0, 31.0])
        np.testing.assert_allclose(table.column("class_scene__test_top1")[rows], [31.0, 32.0])
        assert "class_scene__valid_loss" not in table.columns  # 'best' loss is meaningless
        np.testing.assert_allclose(table.column("class_scene__encoder_params")[rows], [1.5, 2.5])


def test_truncated_and_foreign_files(tmp_path):
    src = tmp_path / "nb.pth"
    layouts.torch_save_legacy(layouts.nb201_pth_dict(), src)
    src.write_bytes(src.read_bytes()[:300])
    with pytest.raises(CatchjaxError, match="truncated"):
        importers.import_benchmark(src, dest=tmp_path / "d")
    src.write_bytes(b"\x00\x01garbage")
    with pytest.raises(CatchjaxError, match="cannot read it"):
        importers.import_benchmark(src, dest=tmp_path / "d")
    other = tmp_path / "other.pth"
    layouts.torch_save_zip({"state_dict": {}}, other)
    with pytest.raises(CatchjaxError, match="not a NAS-Bench-201 file"):
        importers.import_benchmark(other, dest=tmp_path / "d")
    assert not (tmp_path / "d" / "nb201.npz").exists()


def test_import_compact_npz_and_use_it(tmp_path, data_dir, monkeypatch):
    written = importers.import_benchmark(data_dir / "transnas101_micro.npz", dest=tmp_path)
    monkeypatch.setenv("CATCHJAX_DATA", str(tmp_path))
    assert tables.load_table("transnas-micro").n_archs == 4096
    with pytest.raises(CatchjaxError, match="must be named one of"):
        bad = tmp_path / "mine.npz"
        bad.write_bytes(written[0].read_bytes())
        importers.import_benchmark(bad, dest=tmp_path / "x")


@pytest.mark.parametrize("save", [layouts.torch_save_zip, layouts.torch_save_legacy])
def test_many_small_views_cannot_ask_for_more_than_the_total_limit(tmp_path, save,
                                                                   monkeypatch):
    """Each zero-stride view is within the per-tensor limit; together they are not (the
    second probe of issue 21: eight 2 GiB views in a 690-byte file). Scaled down here."""

    class View(layouts.FakeTensor):
        def __reduce__(self):
            fn, (storage, _, _, _, *rest) = super().__reduce__()
            return fn, (storage, 0, (2**16,), (0,), *rest)  # 256 KiB from one float

    monkeypatch.setattr(safe_pickle, "MAX_TOTAL_BYTES", 2**20)  # 1 MiB for the test
    save({f"v{i}": View(np.ones(1)) for i in range(3)}, tmp_path / "few.pth")
    assert len(safe_pickle.load_torch_file(tmp_path / "few.pth")) == 3  # 768 KiB: fine
    save({f"v{i}": View(np.ones(1)) for i in range(8)}, tmp_path / "many.pth")
    with pytest.raises(CatchjaxError, match="together ask for more than"):
        safe_pickle.load_torch_file(tmp_path / "many.pth")


def test_infinite_values_in_a_table_are_refused(tmp_path):
    from catchjax.benchmarks import spaces

    good = spaces.TRANSNAS_MICRO.enumerate()
    acc = np.linspace(0, 1, len(good))
    acc[[3, 7]] = np.inf  # a sweep would rank these rows best
    path = tmp_path / "transnas101_micro.npz"
    np.savez(path, ops=good, acc=acc)
    with pytest.raises(CatchjaxError, match=r"2 infinite value\(s\) \(rows 3, 7"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
    acc[[3, 7]] = 1e39  # finite in float64, infinite once stored as float32
    np.savez(path, ops=good, acc=acc)
    with pytest.raises(CatchjaxError, match="beyond float32"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
