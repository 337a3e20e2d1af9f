"""Tiny files in the official benchmark layouts, written without torch or the APIs.

``torch.save`` layouts are reproduced by hand: pickles whose tensors refer to
``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` by name (stand-in modules
are registered only while pickling), with storages in the zip or legacy layout.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import pickle
import sys
import types
import zipfile

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C


class FakeTensor:
    """Pickles like a torch float32 tensor."""

    def __init__(self, array):
        self.array = np.ascontiguousarray(array, dtype=np.float32)

    def __reduce__(self):
        stride = tuple(s // 4 for s in self.array.strides)
        storage = _StorageRef(self.array)
        fn = sys.modules["torch._utils"]._rebuild_tensor_v2
        return fn, (storage, 0, self.array.shape, stride, False, {})


class _StorageRef:
    def __init__(self, array):
        self.array = array


@contextlib.contextmanager
def stand_in_modules(mods: dict):
    """Register stand-in modules (name -> module) only while pickling, so the pickles
    name classes of libraries this environment need not have; restored afterwards."""
    old = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n, m in old.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


@contextlib.contextmanager
def fake_torch_modules():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    with stand_in_modules({"torch": torch, "torch._utils": utils}):
        yield torch


class _TorchPickler(pickle.Pickler):
    def __init__(self, f, torch, storages):
        super().__init__(f, protocol=2)
        self.torch, self.storages = torch, storages

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            key = str(len(self.storages))
            self.storages.append((key, obj.array))
            return ("storage", self.torch.FloatStorage, key, "cpu", obj.array.size)
        return None


def torch_save_zip(obj, path):
    with fake_torch_modules() as torch:
        storages, buf = [], io.BytesIO()
        _TorchPickler(buf, torch, storages).dump(obj)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/version", "3\n")
        for key, array in storages:
            zf.writestr(f"archive/data/{key}", array.tobytes())


def torch_save_legacy(obj, path):
    with fake_torch_modules() as torch, open(path, "wb") as f:
        pickle.dump(MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, f, protocol=2)
        storages = []
        _TorchPickler(f, torch, storages).dump(obj)
        pickle.dump([k for k, _ in storages], f, protocol=2)
        for _, array in storages:
            f.write(int(array.size).to_bytes(8, "little"))
            f.write(array.tobytes())


def _results_count(epochs, acc, seed):
    last = epochs - 1
    return {
        "name": "x", "net_state_dict": None, "seed": seed, "epochs": epochs,
        "train_acc1es": {last: acc + 5.0}, "train_losses": {last: 0.1},
        "eval_names": ["x-valid", "x-test", "ori-test"],
        "eval_acc1es": {f"x-valid@{last}": acc, f"x-test@{last}": acc - 1.0,
                        f"ori-test@{last}": acc - 0.5},
        "params": 0.5 + acc / 1000, "flop": 50.0 + acc, "latency": [0.01],
    }


def arch_results(index, arch_str, epochs, base):
    """An ArchResults state dict: two seeds on cifar10-valid, one elsewhere."""
    seeds = {"cifar10-valid": [777, 888], "cifar10": [777], "cifar100": [777],
             "ImageNet16-120": [777]}
    offsets = {"cifar10-valid": 0.0, "cifar10": 2.0, "cifar100": -20.0, "ImageNet16-120": -40.0}
    all_results = {}
    for d, ss in seeds.items():
        for k, s in enumerate(ss):
            all_results[(d, s)] = _results_count(epochs, base + offsets[d] + k, s)
    return {"arch_index": index, "arch_str": arch_str, "dataset_seed": seeds,
            "all_results": all_results, "clear_net_done": True}


NB201_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]


def nb201_pth_dict():
    infos = {
        i: {"less": arch_results(i, a, 12, 60.0 + i), "full": arch_results(i, a, 200, 80.0 + i)}
        for i, a in enumerate(NB201_ARCHS)
    }
    return {"meta_archs": list(NB201_ARCHS), "arch2infos": infos, "evaluated_indexes": {0, 1, 2},
            "total_archs": len(NB201_ARCHS)}


def nats_single_file(path):
    infos = {
        i: {"12": arch_results(i, a, 12, 60.0 + i), "200": arch_results(i, a, 200, 80.0 + i)}
        for i, a in enumerate(NB201_ARCHS)
    }
    with bz2.open(path, "wb") as f:
        pickle.dump({"meta_archs": list(NB201_ARCHS), "arch2infos": infos,
                     "evaluated_indexes": [0, 1, 2]}, f, protocol=4)


def nats_folder(folder, with_meta=True):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(NB201_ARCHS):
        with bz2.open(folder / f"{i:06d}.pickle.pbz2", "wb") as f:
            pickle.dump({"12": arch_results(i, a, 12, 60.0 + i),
                         "200": arch_results(i, a, 200, 80.0 + i)}, f, protocol=4)
    if with_meta:
        with bz2.open(folder / "meta.pickle.pbz2", "wb") as f:
            pickle.dump({"meta_archs": list(NB201_ARCHS), "evaluated_indexes": [0, 1, 2]}, f)


TRANSNAS_ARCHS = {"micro": ["64-41414-3_33_333", "64-41414-0_12_301"],
                  "macro": ["64-4111-basic", "64-123412-basic"]}


def transnas_pth_dict(tensor_metrics=False):
    data = {}
    for ss, archs in TRANSNAS_ARCHS.items():
        data[ss] = {}
        for k, arch in enumerate(archs):
            curve = np.array([10.0, 30.0 + k, 20.0])
            top1 = FakeTensor(curve) if tensor_metrics else curve.tolist()
            data[ss][arch] = {
                "class_scene": {
                    "total_epochs": 3,
                    "model_info": {"encoder_params": 1.5 + k},
                    "metrics": {"valid_top1": top1, "valid_loss": [3.0, 2.0, 1.0],
                                "test_top1": [11.0, 31.0 + k, 21.0]},
                },
            }
    return {"metrics_dict": {"class_scene": ["valid_top1", "valid_loss", "test_top1"]},
            "info_names": ["encoder_params"], "task_list": ["class_scene"], "data": data}
