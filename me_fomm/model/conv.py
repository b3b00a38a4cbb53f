"""The stride-1 2-D convolution of every learned layer, with a CPU kernel gradient of its own.

The value and the input gradient are XLA's convolutions on every backend. The kernel gradient on CPU is
not: XLA:CPU writes dL/dK as one more convolution whose window is the whole image and whose "batch" is
the channel axis, which runs at 15-20 GFLOP/s on the 2-core EPYC we measured (XNNPACK on) against
100-160 for the forward convolution. There it dominated a training step (8 of 18 s of fomm_vox at
batch 2). Here it is the same sum written as one matrix product per kernel tap (i, j):

    dL/dK[i, j] = sum over (n, y, x) of  x_pad[n, y + i, x + j, :]^T  g[n, y, x, :]      (Cin x Cout)

with x_pad the zero-padded input and g = dL/dy: the same FLOPs as a convolution, in the dense matrix
products the CPU libraries are fast at (3-4x faster for the generator's 3x3 layers at 256x256; the
figures, and where it is slower instead, are in `per_tap_pays`). GPU and TPU keep
XLA's own gradient: the choice is made from the backend when the function is traced.
`ME_FOMM_CPU_PATHS=0` keeps XLA's gradient on CPU too (for comparisons).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

_DIMS = ("NHWC", "HWIO", "NHWC")


def _plain(x, kernel, padding):
  return jax.lax.conv_general_dilated(
    x, kernel, window_strides=(1, 1), padding=padding, dimension_numbers=_DIMS
  )


def per_tap_kernel_grad(x, g, kernel_shape, padding):
  """dL/dK (kh, kw, Cin, Cout) of `_plain(x, K, padding)` given g = dL/dy, one matmul per tap
  (accumulated in float32 for bfloat16 inputs)."""
  kh, kw, cin, cout = kernel_shape
  (pt, pb), (pl, pr) = padding
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  ho, wo = g.shape[1:3]
  gf = g.reshape(-1, cout)
  acc = jnp.float32 if x.dtype == jnp.bfloat16 else None
  rows = []
  for i in range(kh):
    taps = []
    for j in range(kw):
      patch = xp[:, i : i + ho, j : j + wo].reshape(-1, cin)
      taps.append(jnp.dot(patch.T, gf, preferred_element_type=acc))
    rows.append(jnp.stack(taps))
  return jnp.stack(rows)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _cpu_conv(x, kernel, padding):
  return _plain(x, kernel, padding)


def _cpu_conv_fwd(x, kernel, padding):
  return _plain(x, kernel, padding), (x, kernel)


def _cpu_conv_bwd(padding, residuals, g):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda v: _plain(v, kernel, padding), x)
  (dx,) = input_vjp(g)
  dk = per_tap_kernel_grad(x, g, kernel.shape, padding).astype(kernel.dtype)
  return dx, dk


_cpu_conv.defvjp(_cpu_conv_fwd, _cpu_conv_bwd)


def cpu_paths() -> bool:
  """True when the CPU formulations are traced (this kernel gradient, and the pyramid's blur as
  matrix products, `me_fomm.model.pyramid`): the default backend is the CPU and
  ME_FOMM_CPU_PATHS is not 0."""
  return jax.default_backend() == "cpu" and os.environ.get("ME_FOMM_CPU_PATHS", "1") != "0"


def per_tap_pays(kernel_shape, image_shape=None) -> bool:
  """Whether the per-tap kernel gradient beats XLA:CPU's for a kernel of this shape on images of
  `image_shape` (N, H, W, C).

  Measured on a 2-core EPYC (jax 0.10.2, XNNPACK on), dL/dK alone: 3x3 64->128 at 256x256 batch 2
  1509 -> 484 ms, 3x3 256->256 at 64x64 batch 2 304 -> 117 ms, 3x3 128->128 at 32x32 batch 8 91 ->
  49 ms (alone); but in the demo's whole training step (64 px, its 64-channel layers at 16x16 and
  below) it made the step slower (8.3 -> 6.2 pairs/s), so it is kept to images of 64x64 and more. 7x7 kernels (49 small products; 64->3 at 256x256: 705 -> 1309 ms) and layers with
  fewer than 64 channels on a side (3x3 8->16: 1.1 -> 6.1 ms) are faster in XLA's form.
  """
  kh, kw, cin, cout = kernel_shape
  big_image = image_shape is None or image_shape[1] * image_shape[2] >= 64 * 64
  return kh * kw <= 9 and min(cin, cout) >= 64 and big_image


def conv2d(x, kernel, padding) -> jax.Array:
  """Stride-1 convolution, NHWC x HWIO -> NHWC; `padding` ((top, bottom), (left, right)) zeros.

  Equal to `jax.lax.conv_general_dilated` in value and gradients; on CPU its kernel gradient is the
  per-tap matrix product of the module doc where that is faster (`per_tap_pays`).
  """
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  if cpu_paths() and per_tap_pays(kernel.shape, x.shape):
    return _cpu_conv(x, kernel, padding)
  return _plain(x, kernel, padding)
