"""Display names of the tables' columns, for figures, reports and ``data list --columns``.

The column names are the tables' own (``cifar10_valid_valid_acc_12``, ``jigsaw__valid_top1``)
so that files stay comparable with the official releases; a reader of a figure should not
have to decode them. Names are derived from the columns' patterns; a column no pattern
knows (a user's table) is shown as it is.
"""

from __future__ import annotations

import re

DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16": "ImageNet16-120"}
SPLITS = {"train": "training", "valid": "validation", "test": "test"}
# NB201's CIFAR-10 comes in two protocols: "cifar10_valid_*" is trained on the training
# half and evaluated on the validation half (and on the test set); "cifar10_*" is trained
# on training + validation and evaluated on the test set.
_NB201 = re.compile(r"^(cifar10_valid|cifar10|cifar100|imagenet16)_(train|valid|test)_acc_(\d+)$")
_HW = re.compile(r"^(cifar10|cifar100|imagenet16)_(edgegpu|edgetpu|eyeriss|fpga|pixel3|raspi4)"
                 r"_(latency|energy|arithmetic_intensity)$")
HARDWARE = {"edgegpu": "Edge GPU", "edgetpu": "Edge TPU", "eyeriss": "Eyeriss", "fpga": "FPGA",
            "pixel3": "Pixel 3", "raspi4": "Raspberry Pi 4"}
HW_UNITS = {"latency": "latency (ms)", "energy": "energy (mJ)",
            "arithmetic_intensity": "arithmetic intensity"}
_TRANSNAS = re.compile(r"^([a-z_]+?)__(train|valid|test)_([A-Za-z0-9_]+)$")
TRANSNAS_METRICS = {"top1": "top-1 accuracy (%)", "top5": "top-5 accuracy (%)",
                    "ssim": "SSIM", "neg_loss": "negative L2 loss", "acc": "pixel accuracy (%)",
                    "mIoU": "mIoU (%)"}
_FAMILY = re.compile(r"^(type\d+_[a-z])__(valid|test)_score$")  # synthetic-context
FIXED = {"flops_cifar10_M_naslib": "FLOPs on CIFAR-10 (M)",
         "flops_imagenet16_M_naslib": "FLOPs on ImageNet16-120 (M)",
         "params_cifar10_M": "parameters on CIFAR-10 (M)"}


def is_hardware_cost(column: str) -> bool:
    """A HW-NAS-Bench latency or energy column: positive where measured (its -1 marks a
    network the device's toolchain could not run)."""
    m = _HW.match(column)
    return bool(m) and m.group(3) in ("latency", "energy")


def display_name(column: str) -> str:
    """A reader's name for a table column (the column itself when no pattern knows it)."""
    if column in FIXED:
        return FIXED[column]
    m = _NB201.match(column)
    if m:
        data, split, epochs = m.groups()
        name = "CIFAR-10 (train/valid split)" if data == "cifar10_valid" else DATASETS[data]
        return f"{name} {SPLITS[split]} accuracy, {epochs} epochs (%)"
    m = _HW.match(column)
    if m:
        data, device, what = m.groups()
        return f"{HARDWARE[device]} {HW_UNITS[what]}, {DATASETS[data]}"
    if column.endswith("__time_elapsed"):
        return f"{column[:-len('__time_elapsed')]} training time (as stored)"
    m = _FAMILY.match(column)
    if m:
        return f"task {m.group(1)} {SPLITS[m.group(2)]} score (standard units)"
    m = _TRANSNAS.match(column)
    if m and m.group(3) in TRANSNAS_METRICS:
        task, split, metric = m.groups()
        return f"{task} {SPLITS[split]} {TRANSNAS_METRICS[metric]}"
    return column


BENCHMARK_NAMES = {"nb201": "NAS-Bench-201", "transnas-micro": "TransNAS-Bench-101 micro",
                   "transnas-macro": "TransNAS-Bench-101 macro", "context": "context family"}
TASK_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16-120": "ImageNet16-120",
              "class_scene": "scene classification", "class_object": "object classification",
              "jigsaw": "jigsaw puzzle", "room_layout": "room layout",
              "segmentsemantic": "semantic segmentation", "normal": "surface normals",
              "autoencoder": "autoencoding"}


def task_title(benchmark: str, task: str) -> str:
    """A figure title for a benchmark's task: ``NAS-Bench-201, CIFAR-100``; a synthetic
    table says so (``synthetic NAS-Bench-201 (made-up numbers), CIFAR-100``)."""
    synthetic = benchmark.startswith("synthetic-")
    base = benchmark.removeprefix("synthetic-")
    name = BENCHMARK_NAMES.get(base, base)
    if synthetic:
        name = f"synthetic {name} (made-up numbers)"
    return f"{name}, {TASK_NAMES.get(task, task)}"
