"""Building blocks of First Order Motion Model (modules/util.py of the original), NHWC.

Every block keeps the original's order of operations (conv -> BatchNorm -> ReLU -> pool, nearest x2
upsampling before the conv, pre-activation residual blocks) and PyTorch's default initialisation, so that
converted checkpoints and freshly trained models behave like the published ones.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from me_fomm.model import conv

Dtype = Any


def torch_uniform_init(fan_in: int):
  """PyTorch's default Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.

  (kaiming_uniform with a=sqrt(5) gives bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in).)
  """
  bound = 1.0 / math.sqrt(max(fan_in, 1))

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class Conv2d(nn.Module):
  """2-D convolution with PyTorch's zero padding and init; kernel HWIO, float32 parameters.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw) or an int.
    padding: symmetric zero padding per side (PyTorch's `padding=`).
    kernel_init / bias_init: override the PyTorch default (the Jacobian head starts at the identity).
    upsample: nearest x2 upsampling of the input first (F.interpolate before the conv), computed
      without the upsampled tensor where `conv.upsample_conv2d` can.
  """

  features: int
  kernel_size: int | Sequence[int] = 3
  padding: int | Sequence[int] = 0
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  kernel_init: Any = None
  bias_init: Any = None
  upsample: bool = False

  @nn.compact
  def __call__(self, x):
    kh, kw = (
      (self.kernel_size, self.kernel_size)
      if isinstance(self.kernel_size, int)
      else self.kernel_size
    )
    ph, pw = (self.padding, self.padding) if isinstance(self.padding, int) else self.padding
    fan_in = x.shape[-1] * kh * kw
    kernel = self.param(
      "kernel",
      self.kernel_init or torch_uniform_init(fan_in),
      (kh, kw, x.shape[-1], self.features),
      jnp.float32,
    )
    op = conv.upsample_conv2d if self.upsample else conv.conv2d
    y = op(x.astype(self.dtype), kernel.astype(self.dtype), ((ph, ph), (pw, pw)))
    if self.use_bias:
      bias = self.param(
        "bias", self.bias_init or torch_uniform_init(fan_in), (self.features,), jnp.float32
      )
      y = y + bias.astype(self.dtype)
    return y


class BatchNorm2d(nn.Module):
  """BatchNorm over N, H, W as PyTorch's (Synchronized)BatchNorm2d computes it.

  Training normalises with the biased batch variance and updates the running variance with the unbiased
  one (PyTorch's convention), momentum 0.1 on the new value, eps 1e-5. Statistics are computed in float32
  even for bfloat16 activations. Under `jax.jit` with the batch sharded, the mean over axis 0 is a global
  reduction, which is what the original's synchronized BatchNorm computed across GPUs.
  """

  momentum: float = 0.1
  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    x32 = x.astype(jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(x32, axis=axes)
      var = jnp.mean(jnp.square(x32 - mean), axis=axes)
      if not self.is_initializing():
        n = math.prod(x.shape[:-1])
        unbiased = var * (n / max(n - 1, 1))
        ra_mean.value = (1 - self.momentum) * ra_mean.value + self.momentum * jax.lax.stop_gradient(
          mean
        )
        ra_var.value = (1 - self.momentum) * ra_var.value + self.momentum * jax.lax.stop_gradient(
          unbiased
        )
    else:
      mean, var = ra_mean.value, ra_var.value
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    y = (x32 - mean) * mul + bias
    return y.astype(self.dtype)


def maybe_remat(module_cls, remat: bool, static_argnums=(2,)):
  """`module_cls`, or its rematerialised version (`nn.remat`) when `remat` is set.

  Rematerialised blocks keep only their inputs for the backward pass and recompute everything inside
  (conv, BatchNorm, ReLU outputs), trading about one extra forward for activation memory where memory
  limits the batch. Parameter names do not change (modules are always created with `name=`), so
  checkpoints load either way. `static_argnums` counts `self` as 0; the default marks `train` (the
  argument after the input) static, since the blocks branch on it in Python. Call wrapped modules with
  positional arguments only: keyword arguments would be traced.
  """
  return nn.remat(module_cls, static_argnums=static_argnums) if remat else module_cls


def avg_pool2(x):
  """nn.AvgPool2d(2): 2x2 mean, stride 2, odd trailing rows/columns dropped."""
  b, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv_norm_relu(
  x, train: bool, features: int, kernel_size: int, padding: int, dtype, upsample: bool = False
):
  """conv -> BN -> ReLU as the submodules 'conv' and 'norm' of the module whose compact method calls it
  (`upsample`: nearest x2 before the conv, `Conv2d.upsample`)."""
  x = Conv2d(features, kernel_size, padding, dtype=dtype, upsample=upsample, name="conv")(x)
  return nn.relu(BatchNorm2d(dtype=dtype, name="norm")(x, train))


class SameBlock2d(nn.Module):
  """conv -> BN -> ReLU, resolution kept."""

  features: int
  kernel_size: int = 3
  padding: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    return _conv_norm_relu(x, train, self.features, self.kernel_size, self.padding, self.dtype)


class DownBlock2d(nn.Module):
  """conv 3x3 -> BN -> ReLU -> 2x2 average pool (the encoder's block)."""

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    return avg_pool2(_conv_norm_relu(x, train, self.features, 3, 1, self.dtype))


class UpBlock2d(nn.Module):
  """nearest x2 -> conv 3x3 -> BN -> ReLU (the decoder's block)."""

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    return _conv_norm_relu(x, train, self.features, 3, 1, self.dtype, upsample=True)


class ResBlock2d(nn.Module):
  """Pre-activation residual block: BN -> ReLU -> conv -> BN -> ReLU -> conv, plus the input."""

  kernel_size: int = 3
  padding: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    c = x.shape[-1]
    out = nn.relu(BatchNorm2d(dtype=self.dtype, name="norm1")(x, train))
    out = Conv2d(c, self.kernel_size, self.padding, dtype=self.dtype, name="conv1")(out)
    out = nn.relu(BatchNorm2d(dtype=self.dtype, name="norm2")(out, train))
    out = Conv2d(c, self.kernel_size, self.padding, dtype=self.dtype, name="conv2")(out)
    return out + x.astype(out.dtype)


class _HourglassPart(nn.Module):
  """The widths shared by the hourglass and its halves: block i has min(max_features,
  block_expansion * 2**i) channels."""

  block_expansion: int
  num_blocks: int = 3
  max_features: int = 256
  dtype: Dtype = jnp.float32

  def width(self, i: int) -> int:
    return min(self.max_features, self.block_expansion * 2**i)


class Encoder(_HourglassPart):
  """Hourglass encoder; returns the input and every block's output (the skips)."""

  @nn.compact
  def __call__(self, x, train: bool):
    outs = [x]
    for i in range(self.num_blocks):
      down = DownBlock2d(self.width(i + 1), dtype=self.dtype, name=f"down_blocks_{i}")
      outs.append(down(outs[-1], train))
    return outs


class Decoder(_HourglassPart):
  """Hourglass decoder: up blocks from the deepest skip, each output concatenated with the next skip.

  The output has block_expansion + in_features channels (the last skip is the input itself).
  """

  @nn.compact
  def __call__(self, skips, train: bool):
    skips = list(skips)
    out = skips.pop()
    for j, i in enumerate(reversed(range(self.num_blocks))):
      out = UpBlock2d(self.width(i), dtype=self.dtype, name=f"up_blocks_{j}")(out, train)
      skip = skips.pop()
      out = jnp.concatenate([out, skip.astype(out.dtype)], axis=-1)
    return out


class Hourglass(_HourglassPart):
  """U-Net style hourglass (Newell et al. 2016 as used by FOMM). Input H, W must divide by 2**num_blocks."""

  @nn.compact
  def __call__(self, x, train: bool):
    h, w = x.shape[1:3]
    step = 2**self.num_blocks
    if h % step or w % step:
      raise ValueError(
        f"Hourglass: input {h}x{w} is not divisible by 2**num_blocks={step}; the skips would "
        "not line up. Use an image size that is a multiple of "
        f"{step} / scale_factor (e.g. 256 with scale_factor 0.25 and 5 blocks)."
      )
    parts = (self.block_expansion, self.num_blocks, self.max_features, self.dtype)
    skips = Encoder(*parts, name="encoder")(x, train)
    return Decoder(*parts, name="decoder")(skips, train)
