"""Anti-aliased downsampling and the image pyramid (AntiAliasInterpolation2d / ImagePyramide of FOMM)."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _step(scale: float) -> int:
  inv = 1.0 / float(scale)
  step = int(round(inv))
  if not (0 < scale <= 1) or abs(inv - step) > 1e-6:
    raise ValueError(
      f"antialias_downsample: scale {scale} must be 1/n for an integer n >= 1 "
      "(the original keeps every n-th pixel of the blurred image)"
    )
  return step


@functools.lru_cache(maxsize=32)
def gaussian_kernel(scale: float) -> np.ndarray:
  """The (k, k) blur of AntiAliasInterpolation2d: sigma = (1/s - 1)/2, k = 2 round(4 sigma) + 1, sum 1."""
  sigma = (1 / scale - 1) / 2
  size = 2 * round(sigma * 4) + 1  # Python's round, as the original
  mean = (size - 1) / 2
  ax = np.arange(size, dtype=np.float32)
  g = np.exp(-((ax - mean) ** 2) / (2 * np.float32(sigma) ** 2)).astype(np.float32)
  kernel = g[:, None] * g[None, :]
  return (kernel / kernel.sum()).astype(np.float32)


def antialias_downsample(x: jax.Array, scale: float) -> jax.Array:
  """Gaussian blur (zero padding) then keep every (1/scale)-th pixel starting at 0; NHWC.

  Same as blurring and then `F.interpolate(scale_factor=scale)` (nearest), done as one strided depthwise
  convolution so the skipped outputs are never computed. Output size floor(H * scale).
  """
  if x.ndim != 4:
    raise ValueError(f"antialias_downsample: expected (B, H, W, C), got shape {x.shape}")
  step = _step(scale)
  if step == 1:
    return x
  kernel = gaussian_kernel(1.0 / step)
  k = kernel.shape[0]
  pad = k // 2
  c = x.shape[-1]
  w = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, c)), dtype=x.dtype)  # HWIO depthwise
  y = jax.lax.conv_general_dilated(
    x,
    w,
    window_strides=(step, step),
    padding=((pad, pad), (pad, pad)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=c,
    precision=jax.lax.Precision.HIGHEST,
  )
  h_out, w_out = int(x.shape[1] * (1.0 / step)), int(x.shape[2] * (1.0 / step))
  return y[:, :h_out, :w_out]


def scale_key(scale: float) -> str:
  """'prediction_<s>' suffix as the original writes it: 1 -> '1', 0.5 -> '0.5'."""
  s = float(scale)
  return str(int(s)) if s.is_integer() else str(s)


def image_pyramid(x: jax.Array, scales: Sequence[float]) -> dict[str, jax.Array]:
  """{'prediction_<s>': antialias_downsample(x, s)} for every scale (the perceptual loss / discriminator input)."""
  return {f"prediction_{scale_key(s)}": antialias_downsample(x, s) for s in scales}
