"""catchjax.benchmarks.names: the words figures and reports use instead of column names."""

from catchjax.benchmarks.names import display_name, task_title


def test_task_titles_are_words_and_synthetic_tables_say_so():
    assert task_title("nb201", "cifar100") == "NAS-Bench-201, CIFAR-100"
    assert task_title("nb201", "imagenet16-120") == "NAS-Bench-201, ImageNet16-120"
    assert task_title("transnas-micro", "room_layout") == "TransNAS-Bench-101 micro, room layout"
    assert task_title("synthetic-nb201", "cifar10") == (
        "synthetic NAS-Bench-201 (made-up numbers), CIFAR-10")
    assert task_title("my-table", "my_task") == "my-table, my_task"  # unknown: as it is


def test_hardware_columns_name_device_unit_and_dataset():
    assert display_name("cifar10_edgegpu_energy") == "Edge GPU energy (mJ), CIFAR-10"
    assert display_name("params_cifar10_M") == "parameters on CIFAR-10 (M)"


def test_the_context_familys_columns_and_tasks_read_as_words():
    assert display_name("type3_b__test_score") == "task type3_b test score (standard units)"
    assert task_title("synthetic-context", "type0_a") == (
        "synthetic context family (made-up numbers), type0_a")
