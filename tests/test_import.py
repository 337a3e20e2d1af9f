
import os
import pickle
import sys

import numpy as np
import pytest

from catchjax.benchmarks import importers, safe_pickle, tables
from catchjax.errors import CatchjaxError
from tests import official_layouts as layouts
from tests.helpers import _run


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


def test_data_import_never_replaces_silently_and_checks_companions(tmp_path, capsys, data_dir):
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "nb201.npz").write_bytes((data_dir / "nb201.npz").read_bytes())
    small = tmp_path / "nb201_hw.npz"
    with np.load(data_dir / "nb201_hw.npz") as d:
        np.savez(small, **{k: d[k][:100] for k in d.files})
    # a 100-row hardware table cannot sit beside the 15,625-row main table
    assert _run("data", "import", str(small), "--to", str(dest)) == 2
    assert "not the 15625" in capsys.readouterr().err
    assert not (dest / "nb201_hw.npz").exists()
    # the same file again: refused without --overwrite, accepted with it
    same = tmp_path / "nb201.npz"
    same.write_bytes((data_dir / "nb201.npz").read_bytes())
    assert _run("data", "import", str(same), "--to", str(dest)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert _run("data", "import", str(same), "--to", str(dest), "--overwrite") == 0


class CraftedTensor(layouts.FakeTensor):
    """A tensor whose offset, size and stride say whatever an attacker wants."""

    def __init__(self, array, offset, size, stride):
        super().__init__(array)
        self.offset, self.size, self.stride = offset, size, stride

    def __reduce__(self):
        fn = sys.modules["torch._utils"]._rebuild_tensor_v2
        return fn, (layouts._StorageRef(self.array), self.offset, self.size, self.stride,
                    False, {})


@pytest.mark.parametrize("offset,size,stride,words", [
    (0, (4,), (1000,), "reaches element"),
    (0, (2, 2), (1, 10**12), "reaches element"),
    (3, (4,), (1,), "reaches element"),
    (10**6, (), (), "reaches element"),
    (-1, (2,), (1,), "negative"),
    (0, (2,), (-1,), "negative"),
    (0, (10**8, 10**8), (0, 0), "larger than any benchmark"),
    (0, (2,), (1, 1), "do not match"),
    (0, (2.5,), (1,), "must be integers"),
    (0, "ab", (1,), "must be tuples"),
])
@pytest.mark.parametrize("save", [layouts.torch_save_zip, layouts.torch_save_legacy])
def test_crafted_tensor_views_are_refused(tmp_path, offset, size, stride, words, save):
    path = tmp_path / "crafted.pth"
    save({"x": CraftedTensor(np.arange(4.0), offset, size, stride)}, path)
    with pytest.raises(CatchjaxError, match=words) as err:
        safe_pickle.load_torch_file(path)
    assert str(path) in str(err.value)


def test_a_valid_strided_view_still_loads(tmp_path):
    path = tmp_path / "ok.pth"
    layouts.torch_save_zip({"x": CraftedTensor(np.arange(6.0), 1, (2, 2), (2, 1))}, path)
    np.testing.assert_array_equal(safe_pickle.load_torch_file(path)["x"], [[1, 2], [3, 4]])


def test_storage_claiming_huge_sizes_is_refused(tmp_path):
    path = tmp_path / "legacy.pth"
    layouts.torch_save_legacy({"x": layouts.FakeTensor(np.arange(4.0))}, path)
    raw = path.read_bytes()
    size_at = raw.rindex((4).to_bytes(8, "little"))
    path.write_bytes(raw[:size_at] + (10**13).to_bytes(8, "little") + raw[size_at + 8:])
    with pytest.raises(CatchjaxError, match="claims 10,000,000,000,000 elements"):
        safe_pickle.load_torch_file(path)


def _pth(tmp_path, obj, name="NAS-Bench-201-v1_1-096897.pth"):
    path = tmp_path / name
    layouts.torch_save_zip(obj, path)
    return path


@pytest.mark.parametrize("kind,obj", [
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": [1, 2, 3]}),
    ("nb201-pth", {"meta_archs": 5, "arch2infos": {}}),
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": {0: {"less": []}}}),
    ("nb201-pth", {"meta_archs": layouts.NB201_ARCHS, "arch2infos": {0: {"full": 3,
                                                                          "less": 4}}}),
    ("nb201-pth", {"meta_archs": [1, 2], "arch2infos": {}}),
    ("transnas-pth", {"data": [], "metrics_dict": {}}),
    ("transnas-pth", {"data": {"micro": {"64-41414-3_33_333": []}}, "metrics_dict": {}}),
    ("transnas-pth", {"data": {"micro": {"64-41414-3_33_333": {"jigsaw": {"metrics": []}}}},
                      "metrics_dict": {}}),
    ("transnas-pth", {"data": {"macro": {5: {}}}, "metrics_dict": {}}),
])
def test_structurally_wrong_files_get_clear_errors(tmp_path, kind, obj):
    path = _pth(tmp_path, obj)
    with pytest.raises(CatchjaxError) as err:
        importers.import_benchmark(path, kind, tmp_path / "out")
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_nats_folder_with_wrong_contents(tmp_path):
    import bz2
    import pickle

    folder = tmp_path / "nats"
    folder.mkdir()
    with bz2.open(folder / "000000.pickle.pbz2", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(CatchjaxError, match="not laid out like a nats-topology file"):
        importers.import_benchmark(folder, "auto", tmp_path / "out")


def test_import_to_a_file_instead_of_a_folder_is_refused(tmp_path):
    source, target = tmp_path / "nb201.npz", tmp_path / "a-file"
    source.write_bytes(b"not read: the target is checked first")
    target.write_text("the user's")
    with pytest.raises(CatchjaxError, match="is a file; name the folder"):
        importers.import_benchmark(source, dest=target)
    assert target.read_text() == "the user's"
