"""Anti-aliased downsampling and the image pyramid (AntiAliasInterpolation2d / ImagePyramide of FOMM)."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.model import conv


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
  convolution so the skipped outputs are never computed (on CPU as two banded matrix products, see
  below). Output size floor(H * scale).
  """
  if x.ndim != 4:
    raise ValueError(f"antialias_downsample: expected (B, H, W, C), got shape {x.shape}")
  step = _step(scale)
  if step == 1:
    return x
  h_out, w_out = int(x.shape[1] * (1.0 / step)), int(x.shape[2] * (1.0 / step))
  if conv.cpu_paths():
    # The blur is separable (an outer product of one normalised 1-D Gaussian), so blur-and-keep is
    # A_h x A_w^T per channel with banded (out x in) matrices. On XLA:CPU the strided depthwise
    # convolution's gradient (an input-dilated convolution) took 2 of fomm_vox's 18 s a step;
    # these matrix products take milliseconds.
    a_h = jnp.asarray(_blur_rows(step, x.shape[1], h_out), x.dtype)
    a_w = jnp.asarray(_blur_rows(step, x.shape[2], w_out), x.dtype)
    hi = jax.lax.Precision.HIGHEST
    y = jnp.einsum("oh,nhwc->nowc", a_h, x, precision=hi)
    return jnp.einsum("pw,nowc->nopc", a_w, y, precision=hi)
  kernel = gaussian_kernel(1.0 / step)
  pad = kernel.shape[0] // 2
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
  return y[:, :h_out, :w_out]


@functools.lru_cache(maxsize=64)
def _blur_rows(step: int, size: int, out: int) -> np.ndarray:
  """(out, size): row o holds the 1-D blur taps of output pixel o (input o * step - k // 2 + t)."""
  kernel = gaussian_kernel(1.0 / step)
  k = kernel.shape[0]
  g1 = kernel.sum(axis=1)  # the normalised 1-D Gaussian: kernel = g1 g1^T
  a = np.zeros((out, size), np.float32)
  for o in range(out):
    for t in range(k):
      i = o * step + t - k // 2
      if 0 <= i < size:  # zero padding: taps outside the image read nothing
        a[o, i] = g1[t]
  return a


def scale_key(scale: float) -> str:
  """'prediction_<s>' suffix as the original writes it: 1 -> '1', 0.5 -> '0.5'."""
  s = float(scale)
  return str(int(s)) if s.is_integer() else str(s)


def image_pyramid(x: jax.Array, scales: Sequence[float]) -> dict[str, jax.Array]:
  """{'prediction_<s>': antialias_downsample(x, s)} for every scale (the perceptual loss / discriminator input)."""
  return {f"prediction_{scale_key(s)}": antialias_downsample(x, s) for s in scales}
