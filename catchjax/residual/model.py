"""A Flax ResNet built from a :class:`~catchjax.residual.space.ResNetSpec`.

Basic residual blocks (He et al. 2016: two 3x3 convolutions), the first block of every
stage after the first downsamples (stride 2) and changes the width; a 1x1 projection on
the shortcut where the shape changes. No batch norm: each block's residual branch is
scaled by a learned scalar that starts at 0 (SkipInit, De & Smith 2020), so a 30-block
network trains stably from the first step and the model is a pure function of its params.
The repeated blocks of a stage share one shape, so they run as one ``nn.scan``: compile
time grows with the number of stages, not with depth (candidates of a search are all
different graphs and each is compiled).

``width_scale`` shrinks every width (>= 4 channels) for experiments on a CPU.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from catchjax.residual.space import ResNetSpec


def scaled(width: int, width_scale: float) -> int:
    return max(4, int(round(width * width_scale)))


class BasicBlock(nn.Module):
    width: int
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(self.width, (3, 3), strides=self.stride, padding="SAME")(nn.relu(x))
        h = nn.Conv(self.width, (3, 3), padding="SAME")(nn.relu(h))
        gate = self.param("skip_gate", nn.initializers.zeros, ())
        shortcut = x
        if self.stride != 1 or x.shape[-1] != self.width:
            shortcut = nn.Conv(self.width, (1, 1), strides=self.stride, use_bias=False)(x)
        return shortcut + gate * h


class _Repeated(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x, _):
        return BasicBlock(self.width)(x), None


class ResNet(nn.Module):
    spec: ResNetSpec
    n_classes: int
    width_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        widths = [scaled(w, self.width_scale) for w in self.spec.widths]
        x = nn.Conv(widths[0], (3, 3), padding="SAME", name="stem")(x)
        for i, (n, w) in enumerate(zip(self.spec.blocks, widths)):
            x = BasicBlock(w, stride=1 if i == 0 else 2, name=f"stage{i}_first")(x)
            if n > 1:
                rest = nn.scan(_Repeated, variable_axes={"params": 0},
                               split_rngs={"params": True}, length=n - 1)
                x, _ = rest(w, name=f"stage{i}_rest")(x, None)
        x = jnp.mean(nn.relu(x), axis=(1, 2))
        return nn.Dense(self.n_classes, name="head")(x)


def build(spec: ResNetSpec, n_classes: int, input_shape, seed: int = 0,
          width_scale: float = 1.0):
    """(model, params) for inputs of ``input_shape`` (H, W, C).

    The params are drawn on the host from the shapes (``jax.eval_shape``), not by running
    ``model.init``: every candidate is a new graph, and compiling its init took longer on
    a CPU than training it. Kernels ~ N(0, 1/fan_in) (LeCun normal, Flax's default),
    biases and SkipInit gates 0.
    """
    model = ResNet(spec, n_classes, width_scale)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = getattr(path[-1], "key", "")
        if name != "kernel":
            return jnp.zeros(leaf.shape, leaf.dtype)
        shape = leaf.shape  # conv [(n,) kh, kw, cin, cout], dense [in, out]
        fan_in = int(np.prod(shape[-4:-1])) if len(shape) >= 4 else shape[-2]
        return jnp.asarray(rng.standard_normal(shape) / np.sqrt(fan_in), leaf.dtype)

    return model, jax.tree_util.tree_map_with_path(draw, shapes)


def count_blocks(params) -> int:
    """Residual blocks in a built model's params (a scanned stack counts its length)."""
    tree = params["params"]
    total = 0
    for name, sub in tree.items():
        if name.endswith("_first"):
            total += 1
        elif name.endswith("_rest"):
            total += int(sub["BasicBlock_0"]["skip_gate"].shape[0])
    return total
