"""R-Net: a ResNet (10/18/34/50) that regresses the coefficient vector from a 224 x 224 face crop.

Flax linen, NHWC. BatchNorm statistics are averaged across devices when `axis_name` is given
(the pmapped train step's axis). The output head is zero-initialised, so at step 0 every image
maps to x = 0: the mean face, frontal, ambient light. Images come in as RGB in [0, 1] and are
normalised with the ImageNet mean / std inside the network (so user-supplied ImageNet backbone
weights see what they were trained on).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = {"resnet10": ((1, 1, 1, 1), "basic"), "resnet18": ((2, 2, 2, 2), "basic"),
         "resnet34": ((3, 4, 6, 3), "basic"), "resnet50": ((3, 4, 6, 3), "bottleneck")}


HEADS = ("mean", "flatten")
STEMS = ("imagenet", "patch")


class BasicBlock(nn.Module):
    filters: int
    strides: int
    norm: Callable

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(self.filters, (3, 3), self.strides, padding=1, use_bias=False)(x)
        y = nn.relu(self.norm()(y))
        y = nn.Conv(self.filters, (3, 3), padding=1, use_bias=False)(y)
        y = self.norm(scale_init=nn.initializers.zeros)(y)
        if x.shape[-1] != self.filters or self.strides != 1:
            x = self.norm(name="proj_bn")(nn.Conv(self.filters, (1, 1), self.strides,
                                                  use_bias=False, name="proj")(x))
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    filters: int
    strides: int
    norm: Callable

    @nn.compact
    def __call__(self, x):
        y = nn.relu(self.norm()(nn.Conv(self.filters, (1, 1), use_bias=False)(x)))
        y = nn.Conv(self.filters, (3, 3), self.strides, padding=1, use_bias=False)(y)
        y = nn.relu(self.norm()(y))
        y = nn.Conv(self.filters * 4, (1, 1), use_bias=False)(y)
        y = self.norm(scale_init=nn.initializers.zeros)(y)
        if x.shape[-1] != self.filters * 4 or self.strides != 1:
            x = self.norm(name="proj_bn")(nn.Conv(self.filters * 4, (1, 1), self.strides,
                                                  use_bias=False, name="proj")(x))
        return nn.relu(x + y)


class RNet(nn.Module):
    num_outputs: int
    stage_sizes: Sequence[int] = (3, 4, 6, 3)
    block: str = "bottleneck"
    width: int = 64
    head: str = "mean"            # "mean": global average pooling, then the linear head (the
                                  # paper's ResNet); "flatten": the last feature map flattened
                                  # into the linear head (each cell's features at its place)
    stem: str = "imagenet"        # "imagenet": a 7 x 7 stride-2 convolution, then 3 x 3 stride-2
                                  # max pooling (the paper's ResNet); "patch": one 4 x 4 stride-4
                                  # convolution on non-overlapping patches (ConvNeXt's stem): the
                                  # same 1/4 resolution for the blocks, and on a CPU ~0.6x the
                                  # time of the half-width ResNet-18's forward and backward at
                                  # 96 px (benchmarks/RESULTS.md, "A cheaper stem")
    axis_name: Optional[str] = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = (images - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        x = x.astype(self.dtype)
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                                 epsilon=1e-5, dtype=self.dtype, axis_name=self.axis_name)
        if self.stem == "patch":
            x = nn.Conv(self.width, (4, 4), (4, 4), padding="VALID", use_bias=False,
                        name="stem")(x)
            x = nn.relu(norm(name="stem_bn")(x))
        else:
            x = nn.Conv(self.width, (7, 7), (2, 2), padding=3, use_bias=False, name="stem")(x)
            x = nn.relu(norm(name="stem_bn")(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        block = BasicBlock if self.block == "basic" else Bottleneck
        for i, n in enumerate(self.stage_sizes):
            for j in range(n):
                x = block(self.width * 2 ** i, 2 if (i > 0 and j == 0) else 1, norm)(x)
        if self.head == "flatten":
            x = x.reshape(x.shape[0], -1).astype(jnp.float32)
        else:
            x = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
        return nn.Dense(self.num_outputs, kernel_init=nn.initializers.zeros,
                        bias_init=nn.initializers.zeros, name="head")(x)


def make_rnet(arch: str, num_outputs: int, axis_name: Optional[str] = None,
              width: int = 64, head: str = "mean", stem: str = "imagenet") -> RNet:
    if arch not in ARCHS:
        raise ValueError(f"unknown R-Net architecture {arch!r}; choose from {sorted(ARCHS)}")
    if head not in HEADS:
        raise ValueError(f"unknown R-Net head {head!r}; choose from {list(HEADS)}")
    if stem not in STEMS:
        raise ValueError(f"unknown R-Net stem {stem!r}; choose from {list(STEMS)}")
    stages, block = ARCHS[arch]
    return RNet(num_outputs=num_outputs, stage_sizes=stages, block=block, width=width,
                head=head, stem=stem, axis_name=axis_name)
