"""The stride-1 2-D convolution of every learned layer, with a CPU kernel gradient of its own.

The value and the input gradient are XLA's convolutions on every backend. The kernel gradient on CPU is
not: XLA:CPU writes dL/dK as one more convolution whose window is the whole image and whose "batch" is
the channel axis, which runs at 15-20 GFLOP/s on the 2-core EPYC we measured (XNNPACK on) against
100-160 for the forward convolution. There it dominated a training step (8 of 18 s of fomm_vox at
batch 2). Here it is the same sum written as one matrix product per kernel tap (i, j):

    dL/dK[i, j] = sum over (n, y, x) of  x_pad[n, y + i, x + j, :]^T  g[n, y, x, :]      (Cin x Cout)

with x_pad the zero-padded input and g = dL/dy: the same FLOPs as a convolution, in the dense matrix
products the CPU libraries are fast at (3-4x faster for the generator's 3x3 layers at 256x256). For
large kernels with few output channels (the 7x7 heads) it is one product with the patches of g
instead (`patches_kernel_grad`). Which form a layer gets, with the figures, is `kernel_grad_form`.

The decoder's nearest-x2-upsample-then-3x3 blocks run on CPU in the sub-pixel form of the same sum
(`upsample_conv2d`): 16 instead of 36 multiply-adds per input pixel and channel pair.

GPU and TPU keep XLA's own convolutions: the choice is made from the backend when the function is
traced. `ME_FOMM_CPU_PATHS=0` keeps XLA's forms on CPU too (for comparisons).
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


def _patches(a, kh, kw, h, w, reverse=False):
  """(N, h + kh - 1, w + kw - 1, C) -> (N h w, kh kw C): the kh x kw window at each of the h x w
  positions, taps (i, j)-major; `reverse` reads tap (i, j) at offset (kh - 1 - i, kw - 1 - j)."""
  taps = [(i, j) for i in range(kh) for j in range(kw)]
  if reverse:
    taps = [(kh - 1 - i, kw - 1 - j) for i, j in taps]
  cols = jnp.concatenate([a[:, i : i + h, j : j + w] for i, j in taps], axis=-1)
  return cols.reshape(-1, kh * kw * a.shape[-1])


def patches_kernel_grad(x, g, kernel_shape, padding):
  """dL/dK (kh, kw, Cin, Cout) of `_plain(x, K, padding)` given g = dL/dy, as one matrix product
  with the patches of whichever side has fewer channels (im2col, Chellapilla et al. 2006).

  Cin <= Cout: the input's patches P[n, y, x, (i, j, c)] = x_pad[n, y + i, x + j, c], and
  dL/dK = P^T g. Cout < Cin: the same sum re-indexed over the input's pixels (u, v),
      dL/dK[i, j] = sum over (n, u, v) of  x[n, u, v, :]^T  g_z[n, u + kh - 1 - i, v + kw - 1 - j, :]
  with g_z = g zero-padded by (kh - 1 - pad) on each side (a negative pad crops), so the patches are
  of g, Cout channels a tap. Either way the patches hold kh * kw * min(Cin, Cout) values a pixel.
  """
  kh, kw, cin, cout = kernel_shape
  (pt, pb), (pl, pr) = padding
  acc = jnp.float32 if x.dtype == jnp.bfloat16 else None
  contract = (((0,), (0,)), ((), ()))
  if cin <= cout:
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = _patches(xp, kh, kw, *g.shape[1:3])
    dk = jax.lax.dot_general(cols, g.reshape(-1, cout), contract, preferred_element_type=acc)
    return dk.reshape(kh, kw, cin, cout)
  pads = ((0, 0, 0), (kh - 1 - pt, kh - 1 - pb, 0), (kw - 1 - pl, kw - 1 - pr, 0), (0, 0, 0))
  gz = jax.lax.pad(g, jnp.zeros((), g.dtype), pads)
  cols = _patches(gz, kh, kw, *x.shape[1:3], reverse=True)
  dk = jax.lax.dot_general(x.reshape(-1, cin), cols, contract, preferred_element_type=acc)
  return jnp.moveaxis(dk.reshape(cin, kh, kw, cout), 0, 2)


_KERNEL_GRADS = {"per_tap": per_tap_kernel_grad, "patches": patches_kernel_grad}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _cpu_conv(x, kernel, padding, form):
  return _plain(x, kernel, padding)


def _cpu_conv_fwd(x, kernel, padding, form):
  return _plain(x, kernel, padding), (x, kernel)


def _cpu_conv_bwd(padding, form, residuals, g):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda v: _plain(v, kernel, padding), x)
  (dx,) = input_vjp(g)
  dk = _KERNEL_GRADS[form](x, g, kernel.shape, padding).astype(kernel.dtype)
  return dx, dk


_cpu_conv.defvjp(_cpu_conv_fwd, _cpu_conv_bwd)


def cpu_paths() -> bool:
  """True when the CPU formulations are traced (this kernel gradient, and the pyramid's blur as
  matrix products, `me_fomm.model.pyramid`): the default backend is the CPU and
  ME_FOMM_CPU_PATHS is not 0."""
  return jax.default_backend() == "cpu" and os.environ.get("ME_FOMM_CPU_PATHS", "1") != "0"


def kernel_grad_form(kernel_shape, image_shape=None) -> str:
  """Which CPU kernel gradient to trace for a kernel of this shape on images of `image_shape`
  (N, H, W, C): 'per_tap', 'patches' or 'xla' (XLA:CPU's own), by where each was measured fastest.

  Measured on a 2-core EPYC (jax 0.10.2, XNNPACK on), dL/dK alone, batch 2:
  - per tap, 3x3 with >= 64 channels on both sides on images of 64x64 and more: 3x3 64->128 at
    256x256 1509 -> 484 ms, 3x3 256->256 at 64x64 304 -> 117 ms. On smaller images it made the
    demo's whole training step slower (8.3 -> 6.2 pairs/s) though it was faster alone.
  - patches of the gradient, kernels larger than 3x3 with fewer output than input channels and
    >= 64 inputs (49 taps of few channels make one product instead of 49 thin ones): 7x7 64->3 at
    256x256 361 -> 118 ms (per tap 1089), 7x7 108->11 at 64x64 60 -> 25 ms, 7x7 108->1 77 -> 2 ms.
  - XLA's elsewhere: 7x7 3->64 at 256x256 (XLA 79, per tap 87, patches 146 ms), 7x7 35->40.
  """
  kh, kw, cin, cout = kernel_shape
  big_image = image_shape is None or image_shape[1] * image_shape[2] >= 64 * 64
  if kh * kw <= 9 and min(cin, cout) >= 64 and big_image:
    return "per_tap"
  if kh * kw > 9 and cout < cin and cin >= 64:
    return "patches"
  return "xla"


def conv2d(x, kernel, padding) -> jax.Array:
  """Stride-1 convolution, NHWC x HWIO -> NHWC; `padding` ((top, bottom), (left, right)) zeros.

  Equal to `jax.lax.conv_general_dilated` in value and gradients; on CPU its kernel gradient is a
  matrix product of the module doc where that was measured faster (`kernel_grad_form`).
  """
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  form = kernel_grad_form(kernel.shape, x.shape) if cpu_paths() else "xla"
  if form != "xla":
    return _cpu_conv(x, kernel, padding, form)
  return _plain(x, kernel, padding)


def upsample_nearest2(x):
  """F.interpolate(scale_factor=2), nearest: every pixel repeated 2x2."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def polyphase_kernel(kernel):
  """(3, 3, Cin, Cout) -> (2, 2, Cin, 4 Cout): the 2x2 kernel of each output phase (p, q) of a 3x3
  convolution of a nearest-x2-upsampled input, phases stacked (p, q)-major on the output axis.

  After the upsampling, output row 2a + p reads input rows: phase 0, row a - 1 with tap 0 and row a
  with taps 1 + 2; phase 1, row a with taps 0 + 1 and row a + 1 with tap 2 (columns alike).
  """
  k = kernel.astype(jnp.float32)

  def phases(k, axis):  # (3, ...) taps -> (2 phases, 2 input offsets, ...) along `axis`
    t0, t1, t2 = (jax.lax.index_in_dim(k, i, axis, keepdims=False) for i in range(3))
    return jnp.stack([jnp.stack([t0, t1 + t2]), jnp.stack([t0 + t1, t2])])

  rows = phases(k, 0)  # (p, r, 3, Cin, Cout)
  both = phases(rows, 2)  # (q, s, p, r, Cin, Cout)
  cin, cout = kernel.shape[2:]
  out = jnp.transpose(both, (3, 1, 4, 2, 0, 5))  # (r, s, Cin, p, q, Cout)
  return out.reshape(2, 2, cin, 4 * cout).astype(kernel.dtype)


def _plain_upsample_conv(x, kernel, padding):
  return conv2d(upsample_nearest2(x), kernel, padding)


def _polyphase_upsample_conv(x, kernel):
  n, h, w, _ = x.shape
  cout = kernel.shape[3]
  # Output row r of the 2x2 convolution of the 1-padded input reads input rows r - 1 and r: phase 0
  # of output row 2a needs r = a, phase 1 r = a + 1.
  y = conv2d(x, polyphase_kernel(kernel), ((1, 1), (1, 1)))  # (N, h + 1, w + 1, 4 Cout)
  y = y.reshape(n, h + 1, w + 1, 2, 2, cout)
  rows = [jnp.stack([y[:, p : p + h, q : q + w, p, q] for q in (0, 1)], axis=3) for p in (0, 1)]
  y = jnp.stack(rows, axis=2)  # (N, h, 2, w, 2, Cout)
  return y.reshape(n, 2 * h, 2 * w, cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _upsample_conv(x, kernel, padding):
  return _polyphase_upsample_conv(x, kernel)


def _upsample_conv_fwd(x, kernel, padding):
  return _polyphase_upsample_conv(x, kernel), (x, kernel)


def _upsample_conv_bwd(padding, residuals, g):
  # The gradients of the plain form: differentiated, the sub-pixel form measured slower (its
  # interleave and the 2x2 kernels' transposed convolutions; fomm_vox's step 5.6 -> 6.7 s).
  x, kernel = residuals
  _, vjp = jax.vjp(lambda x, k: _plain_upsample_conv(x, k, padding), x, kernel)
  return vjp(g)


_upsample_conv.defvjp(_upsample_conv_fwd, _upsample_conv_bwd)


def upsample_conv2d(x, kernel, padding) -> jax.Array:
  """`conv2d(upsample_nearest2(x), kernel, padding)`: nearest x2 upsampling, then the convolution.

  On CPU, a 3x3 kernel with padding 1 (every decoder block of FOMM) is evaluated in the sub-pixel
  (polyphase) form of the same sum: each of the four output phases (row and column parity) of the
  upsampled convolution reads a 2x2 neighbourhood of the input with summed taps (`polyphase_kernel`),
  so one 2x2 convolution with 4 Cout outputs on the input's grid, interleaved afterwards (depth to
  space), replaces the 3x3 one on the 4x larger grid: 16 multiply-adds a pixel of the input per
  channel pair instead of 36, and the upsampled tensor is never made. Its gradients are those of the
  plain form. Equal in value and gradients up to float rounding (tests/model/test_conv.py); GPU and
  TPU keep the plain form.
  """
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  h, w = x.shape[1:3]
  # The 2x2 kernels are made from the 3x3 one at every call: 16/9 of its size, which costs more than
  # it saves on the smallest grids (the hourglasses' inner levels: 4x4 in, 2048 -> 512 channels,
  # 24 -> 44 ms), so grids under 16x16 keep the plain form. (The grid, not the batch: an exported
  # program's batch is symbolic.)
  polyphase = kernel.shape[:2] == (3, 3) and padding == ((1, 1), (1, 1)) and h * w >= 256
  if not (cpu_paths() and polyphase):
    return _plain_upsample_conv(x, kernel, padding)
  return _upsample_conv(x, kernel, padding)
