"""Multi-scale Pix2Pix-style discriminator of FOMM (modules/discriminator.py), with optional spectral norm.

Spectral normalisation (Miyato et al., ICLR 2018) follows torch.nn.utils.spectral_norm: the weight matrix is
the kernel reshaped to (out, in * kh * kw) in PyTorch's (O, I, H, W) order, the singular vectors u, v are
state (collection 'batch_stats', so the usual `mutable=['batch_stats']` training call updates them), one
power iteration per training forward, and sigma = u^T W v with u, v held constant for the gradient.
In eval mode no power iteration runs: sigma uses the stored u, v, exactly as PyTorch's eval forward.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from me_fomm.model import geometry, layers, pyramid

Dtype = Any


def _l2_normalize(x, eps=1e-12):
  # torch.nn.functional.normalize: x / max(||x||, eps)
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


class SpectralConv2d(nn.Module):
  """Valid (unpadded) convolution whose kernel is divided by its spectral norm."""

  features: int
  kernel_size: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    k = self.kernel_size
    cin = x.shape[-1]
    fan_in = cin * k * k
    kernel = self.param(
      "kernel", layers.torch_uniform_init(fan_in), (k, k, cin, self.features), jnp.float32
    )
    bias = self.param("bias", layers.torch_uniform_init(fan_in), (self.features,), jnp.float32)
    # torch initialises u, v with normalised standard normals.
    u_var = self.variable(
      "batch_stats",
      "u",
      lambda: _l2_normalize(
        jax.random.normal(self.make_rng("params"), (self.features,), jnp.float32)
      ),
    )
    v_var = self.variable(
      "batch_stats",
      "v",
      lambda: _l2_normalize(jax.random.normal(self.make_rng("params"), (fan_in,), jnp.float32)),
    )
    w_mat = jnp.transpose(kernel, (3, 2, 0, 1)).reshape(self.features, fan_in)  # torch (O, I*kh*kw)
    u, v = u_var.value, v_var.value
    if train and not self.is_initializing():
      w_sg = jax.lax.stop_gradient(w_mat)
      v = _l2_normalize(w_sg.T @ u)
      u = _l2_normalize(w_sg @ v)
      u_var.value, v_var.value = u, v
    sigma = jnp.dot(
      jax.lax.stop_gradient(u),
      w_mat @ jax.lax.stop_gradient(v),
      precision=jax.lax.Precision.HIGHEST,
    )
    w = (kernel / sigma).astype(self.dtype)
    y = jax.lax.conv_general_dilated(
      x.astype(self.dtype), w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + bias.astype(self.dtype)


class InstanceNorm2d(nn.Module):
  """nn.InstanceNorm2d(affine=True): per-sample, per-channel statistics over H, W (biased), eps 1e-5."""

  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    x32 = x.astype(jnp.float32)
    mean = x32.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(x32 - mean).mean(axis=(1, 2), keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias).astype(self.dtype)


def _conv(x, train: bool, features: int, kernel_size: int, sn: bool, dtype):
  """A valid convolution, spectral-normalised when `sn`, as the submodule 'conv' of the caller."""
  if sn:
    return SpectralConv2d(features, kernel_size, dtype, name="conv")(x, train)
  return layers.Conv2d(features, kernel_size, 0, dtype=dtype, name="conv")(x)


class DiscDownBlock(nn.Module):
  """conv 4x4 (valid) -> [InstanceNorm] -> LeakyReLU(0.2) -> [avg pool 2]."""

  features: int
  norm: bool
  pool: bool
  sn: bool
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    out = _conv(x, train, self.features, 4, self.sn, self.dtype)
    if self.norm:
      out = InstanceNorm2d(dtype=self.dtype, name="norm")(out)
    out = nn.leaky_relu(out, 0.2)
    if self.pool:
      out = layers.avg_pool2(out)
    return out


class _ScaleFields(nn.Module):
  """The attributes of one scale's discriminator; the multi-scale one passes them on to every scale."""

  num_channels: int = 3
  block_expansion: int = 64
  num_blocks: int = 4
  max_features: int = 512
  sn: bool = False
  use_kp: bool = False
  num_kp: int = 10
  kp_variance: float = 0.01
  dtype: Dtype = jnp.float32

  def scale_fields(self) -> dict:
    names = [f.name for f in dataclasses.fields(_ScaleFields) if f.name not in ("parent", "name")]
    return {n: getattr(self, n) for n in names}


class Discriminator(_ScaleFields):
  """One scale: returns (feature maps of every block, 1-channel prediction map)."""

  @nn.compact
  def __call__(self, x, kp=None, train: bool = False):
    out = x
    if self.use_kp:
      if kp is None:
        raise ValueError(
          "Discriminator(use_kp=True) needs kp={'value': (B, K, 2)} (the driving keypoints)"
        )
      heat = geometry.kp2gaussian(kp["value"], x.shape[1:3], self.kp_variance)
      out = jnp.concatenate([out, heat.astype(out.dtype)], axis=-1)
    feature_maps = []
    for i in range(self.num_blocks):
      feats = min(self.max_features, self.block_expansion * 2 ** (i + 1))
      out = DiscDownBlock(
        feats,
        norm=i != 0,
        pool=i != self.num_blocks - 1,
        sn=self.sn,
        dtype=self.dtype,
        name=f"down_blocks_{i}",
      )(out, train)
      feature_maps.append(out)
    pred = _conv(out, train, 1, 1, self.sn, self.dtype)
    return [f.astype(jnp.float32) for f in feature_maps], pred.astype(jnp.float32)


def disc_name(scale: float) -> str:
  """Submodule name of one scale: 'discs_1', 'discs_0-5' (torch's ModuleDict key 'discs.1', 'discs.0-5')."""
  return "discs_" + pyramid.scale_key(scale).replace(".", "-")


class MultiScaleDiscriminator(_ScaleFields):
  """One Discriminator per scale; reads pyramid['prediction_<s>'] for each of `scales`."""

  scales: Sequence[float] = (1,)

  @nn.compact
  def __call__(self, x, kp=None, train: bool = False):
    """Args:
      x: image pyramid {'prediction_1': (B, H, W, C), ...} (me_fomm.model.pyramid.image_pyramid).
      kp: driving keypoints {'value': (B, K, 2)} when use_kp.

    Returns:
      {'feature_maps_<s>': [(B, h_i, w_i, F_i) ...], 'prediction_map_<s>': (B, h, w, 1)}.
    """
    out = {}
    for s in self.scales:
      key = pyramid.scale_key(s)
      if f"prediction_{key}" not in x:
        raise ValueError(
          f"MultiScaleDiscriminator: the input pyramid lacks 'prediction_{key}' "
          f"(has {sorted(x)}); build it with image_pyramid(image, scales={list(self.scales)})"
        )
      disc = Discriminator(**self.scale_fields(), name=disc_name(s))
      feats, pred = disc(x[f"prediction_{key}"], kp, train)
      out[f"feature_maps_{key}"] = feats
      out[f"prediction_map_{key}"] = pred
    return out


def spectral_sigma(weight_oihw, u, v) -> float:
  """sigma = u^T W v with W the (O, I*kh*kw) reshape of a torch weight; used by the converter to fold SN."""
  import numpy as np

  w = np.asarray(weight_oihw, np.float64).reshape(weight_oihw.shape[0], -1)
  return float(np.asarray(u, np.float64) @ (w @ np.asarray(v, np.float64)))


__all__ = [
  "MultiScaleDiscriminator",
  "Discriminator",
  "SpectralConv2d",
  "InstanceNorm2d",
  "spectral_sigma",
  "disc_name",
]
