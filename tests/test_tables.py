import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax.benchmarks import spaces, tables, tasks
from catchjax.errors import CatchjaxError

REAL = {
    "nb201": ("nb201.npz", 15625),
    "transnas-micro": ("transnas101_micro.npz", 4096),
    "transnas-macro": ("transnas101_macro.npz", 3256),
}


@pytest.mark.parametrize("benchmark", list(REAL))
def test_code_to_row_maps_every_real_arch(data_dir, benchmark):
    filename, n = REAL[benchmark]
    raw = np.load(data_dir / filename)
    table = tables.load_table(benchmark, data_dir)
    assert table.n_archs == n
    codes = table.space.encode(raw["ops"])
    assert np.array_equal(table.code_to_row[codes], np.arange(n))
    assert (table.code_to_row >= 0).sum() == n
    # arch strings parse to the same rows
    for i in range(0, n, 97):
        assert table.row_of(str(raw["arch_str"][i])) == i


@pytest.mark.parametrize("benchmark", list(REAL))
def test_device_gathers_equal_the_files(data_dir, benchmark):
    filename, _ = REAL[benchmark]
    raw = np.load(data_dir / filename)
    info = tables.BENCHMARKS[benchmark]
    for name, defaults in info.tasks.items():
        task = tasks.make_task(benchmark, name, table=tables.load_table(benchmark, data_dir))
        arrays = task.arrays
        K = task.space.n_choices
        weights = K ** jnp.arange(5, -1, -1)

        @jax.jit
        def query(ops, arrays=arrays, weights=weights):
            rows = arrays.code_to_row[ops @ weights]
            return arrays.reward[rows], arrays.report[rows]

        reward, report = query(jnp.asarray(raw["ops"], jnp.int32))
        np.testing.assert_array_equal(np.asarray(reward), raw[defaults.reward])
        for j, m in enumerate(defaults.report):
            np.testing.assert_array_equal(np.asarray(report)[:, j], raw[m])


def test_real_nb201_best_values(data_dir):
    t = tables.load_table("nb201", data_dir)
    assert t.column("cifar10_test_acc_200").max() == pytest.approx(94.37, abs=0.01)
    assert int(np.argmax(t.column("cifar10_valid_valid_acc_200"))) == 6111
    # the HW-NAS-Bench file is merged in
    assert "cifar10_edgegpu_latency" in t.columns


def test_nan_reward_is_refused_unless_masked(data_dir):
    table = tables.load_table("nb201", data_dir)
    with pytest.raises(CatchjaxError, match="NaN for 6180 of 15625"):
        tasks.make_task("nb201", "cifar10", reward="flops_cifar10_M_naslib", table=table)
    task = tasks.make_task(
        "nb201", "cifar10", reward="flops_cifar10_M_naslib", mask_nan=True, table=table
    )
    assert task.n_searchable == 9445
    nan_rows = np.flatnonzero(np.isnan(table.column("flops_cifar10_M_naslib")))
    codes = table.space.encode(table.actions[nan_rows])
    assert (np.asarray(task.arrays.code_to_row)[codes] == -1).all()


def test_unknown_names_list_what_exists(syn_nb201):
    with pytest.raises(CatchjaxError, match="available: nb201, transnas-micro"):
        tables.benchmark_info("nb202")
    with pytest.raises(CatchjaxError, match="tasks: cifar10, cifar100, imagenet16-120"):
        tasks.make_task("synthetic-nb201", "cifar-10")
    with pytest.raises(CatchjaxError, match="no metric 'acc'.*cifar100_test_acc_12"):
        tasks.make_task("synthetic-nb201", "cifar10", reward="acc")


def test_missing_real_data_says_how_to_fix(tmp_path):
    with pytest.raises(CatchjaxError, match="CATCHJAX_DATA.*synthetic-nb201"):
        tables.load_table("nb201", tmp_path)


def test_malformed_tables_are_refused(tmp_path):
    good = spaces.TRANSNAS_MICRO.enumerate()
    path = tmp_path / "transnas101_micro.npz"
    np.savez(path, ops=good, acc=np.zeros(len(good) - 1))
    with pytest.raises(CatchjaxError, match="column 'acc' has shape"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
    np.savez(path, ops=good[:, :5], acc=np.zeros(len(good)))
    with pytest.raises(CatchjaxError, match="shape"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
    np.savez(path, ops=np.concatenate([good, good[:1]]), acc=np.zeros(len(good) + 1))
    with pytest.raises(CatchjaxError, match="more than once"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
    np.savez(path, ops=good, acc=np.zeros(len(good)))
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(CatchjaxError, match="truncated"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)
    path.write_text("not a table at all")
    with pytest.raises(CatchjaxError, match="not a readable catchjax table"):
        tables.read_npz(path, "transnas-micro", spaces.TRANSNAS_MICRO)


def test_synthetic_tables_are_deterministic_and_correlated():
    from catchjax.benchmarks import synthetic

    t = synthetic.synthetic_table("synthetic-nb201")
    again = synthetic._nb201_columns(t.actions, np.random.default_rng([synthetic.SEED, 3]))
    np.testing.assert_allclose(again["cifar10_test_acc_200"], t.column("cifar10_test_acc_200"),
                               rtol=1e-6)
    from scipy.stats import spearmanr

    rho = spearmanr(t.column("cifar10_valid_valid_acc_12"), t.column("cifar10_test_acc_200"))[0]
    assert 0.6 < rho < 0.99
    rho_tasks = spearmanr(t.column("cifar10_test_acc_200"), t.column("cifar100_test_acc_200"))[0]
    assert 0.3 < rho_tasks < 0.95


def test_gamma_and_cost_transforms(syn_nb201):
    table = syn_nb201.table
    g = tasks.make_task("synthetic-nb201", "cifar10", gamma=0.5, gamma_normalize="percent",
                        table=table)
    raw = table.column("cifar10_valid_valid_acc_12").astype(np.float64)
    np.testing.assert_allclose(np.asarray(g.arrays.reward), (raw / 100) ** 0.5, rtol=1e-6)
    cost = tasks.CostObjective("cifar10_edgegpu_latency", target=5.0)
    c = tasks.make_task("synthetic-nb201", "cifar10", cost=cost, table=table)
    lat = table.column("cifar10_edgegpu_latency").astype(np.float64)
    np.testing.assert_allclose(np.asarray(c.arrays.reward), raw * (lat / 5.0) ** -0.05,
                               rtol=1e-6)
    with pytest.raises(CatchjaxError, match="gamma must be > 0"):
        tasks.make_task("synthetic-nb201", "cifar10", gamma=-1.0, table=table)
