"""Coordinate grids, PyTorch-compatible bilinear sampling, Gaussian keypoint maps, 2x2 algebra.

Conventions (pinned by the reference fixtures): coordinates are normalised to [-1, 1] with
x = 2 i / (W - 1) - 1 (last axis (x, y)), while sampling follows `torch.nn.functional.grid_sample` with
`align_corners=False`, which maps -1 and 1 to the outer *edges* of the border pixels. The half-pixel
mismatch between the two is baked into every published FOMM checkpoint, so it is reproduced here.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def make_coordinate_grid(spatial_size: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """(H, W, 2) grid of normalised (x, y): x = 2 j / (W - 1) - 1, y = 2 i / (H - 1) - 1."""
  h, w = (int(s) for s in spatial_size)
  if h < 2 or w < 2:
    raise ValueError(
      f"make_coordinate_grid: spatial size {(h, w)} must be at least 2x2 (the grid spans "
      "[-1, 1] from the first to the last pixel)"
    )
  x = 2 * (jnp.arange(w, dtype=jnp.float32) / (w - 1)) - 1
  y = 2 * (jnp.arange(h, dtype=jnp.float32) / (h - 1)) - 1
  xx = jnp.broadcast_to(x[None, :], (h, w))
  yy = jnp.broadcast_to(y[:, None], (h, w))
  return jnp.stack([xx, yy], axis=-1).astype(dtype)


def _unnormalize(coord, size: int):
  # align_corners=False: -1 -> -0.5 (left edge of pixel 0), 1 -> size - 0.5.
  return ((coord + 1) * size - 1) / 2


def _reflect(coord, size: int):
  """PyTorch's reflect_coordinates(coord, -1, 2 size - 1) then clip to [0, size - 1] (align_corners=False)."""
  lo, span = -0.5, float(size)
  x = jnp.abs(coord - lo)
  extra = jnp.fmod(x, span)
  flips = jnp.floor(x / span)
  even = jnp.fmod(flips, 2) == 0
  out = jnp.where(even, extra + lo, span - extra + lo)
  return jnp.clip(out, 0, size - 1)


def grid_sample(image: jax.Array, grid: jax.Array, padding_mode: str = "zeros") -> jax.Array:
  """Bilinear sampling equal to torch's `grid_sample(image, grid, align_corners=False)`.

  Args:
    image: (N, H, W, C).
    grid: (N, ..., 2) normalised (x, y) sample positions, any number of middle axes.
    padding_mode: 'zeros' (outside samples read 0) or 'reflection' (coordinates mirrored at the image
      edges, as the equivariance transform uses).

  Returns:
    (N, ..., C) in the image's dtype. Gather-based: four corner reads weighted by the bilinear weights,
    so the backward pass is a scatter-add of the same size (no dense one-hot interpolation matrices).
  """
  if image.ndim != 4:
    raise ValueError(f"grid_sample: image must be (N, H, W, C), got shape {image.shape}")
  if grid.shape[-1] != 2 or grid.shape[0] != image.shape[0]:
    raise ValueError(
      f"grid_sample: grid must be (N, ..., 2) with N={image.shape[0]}, got {grid.shape}"
    )
  if padding_mode not in ("zeros", "reflection"):
    raise ValueError(f"grid_sample: padding_mode {padding_mode!r} is not 'zeros' or 'reflection'")
  n, h, w, c = image.shape
  out_shape = grid.shape[:-1]
  g = grid.reshape(n, -1, 2).astype(jnp.float32)
  ix = _unnormalize(g[..., 0], w)
  iy = _unnormalize(g[..., 1], h)
  if padding_mode == "reflection":
    ix, iy = _reflect(ix, w), _reflect(iy, h)
  x0 = jnp.floor(ix)
  y0 = jnp.floor(iy)
  wx1 = ix - x0
  wy1 = iy - y0
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  flat = image.reshape(n, h * w, c)

  def corner(xi, yi, weight):
    valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
    vals = jax.vmap(lambda f, i: f[i])(flat, idx)  # (N, P, C)
    return vals * jnp.where(valid, weight, 0.0)[..., None].astype(vals.dtype)

  out = (
    corner(x0, y0, (1 - wx1) * (1 - wy1))
    + corner(x0 + 1, y0, wx1 * (1 - wy1))
    + corner(x0, y0 + 1, (1 - wx1) * wy1)
    + corner(x0 + 1, y0 + 1, wx1 * wy1)
  )
  return out.reshape(*out_shape, c).astype(image.dtype)


@functools.lru_cache(maxsize=64)
def _linear_resize_matrix(in_size: int, out_size: int, align_corners: bool = False) -> np.ndarray:
  """(out, in) weights of torch's bilinear interpolate along one axis (align_corners as torch's)."""
  if align_corners:
    src = np.arange(out_size, dtype=np.float64) * ((in_size - 1) / max(out_size - 1, 1))
  else:
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)  # torch clamps negative source positions to 0
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  lam = src - i0
  m = np.zeros((out_size, in_size), np.float64)
  m[np.arange(out_size), i0] += 1 - lam
  m[np.arange(out_size), i1] += lam
  return m.astype(np.float32)


def resize_bilinear(x: jax.Array, size: Sequence[int], align_corners: bool = False) -> jax.Array:
  """`F.interpolate(x, size, mode='bilinear', align_corners=...)` for NHWC arrays.

  Separable: two small dense matrices, exact for the up-sampling FOMM uses (deformation 64 -> 256).
  """
  h_out, w_out = (int(s) for s in size)
  _, h, w, _ = x.shape
  if (h, w) == (h_out, w_out):
    return x
  mh = jnp.asarray(_linear_resize_matrix(h, h_out, align_corners))
  mw = jnp.asarray(_linear_resize_matrix(w, w_out, align_corners))
  x32 = x.astype(jnp.float32)
  y = jnp.einsum("oh,bhwc->bowc", mh, x32, precision=jax.lax.Precision.HIGHEST)
  y = jnp.einsum("pw,bowc->bopc", mw, y, precision=jax.lax.Precision.HIGHEST)
  return y.astype(x.dtype)


def to_sampling_coords(grid_coords: jax.Array, spatial_size: Sequence[int]) -> jax.Array:
  """Positions in the coordinate grid's convention (pixel centre j at 2 j / (W - 1) - 1, as
  `make_coordinate_grid`) -> `grid_sample`'s (align_corners=False: pixel centre j at (2 j + 1) / W - 1)."""
  h, w = (int(s) for s in spatial_size)
  scale = jnp.asarray([(w - 1) / w, (h - 1) / h], jnp.float32)
  return grid_coords * scale


def warp_exact(image: jax.Array, deformation: jax.Array) -> jax.Array:
  """Warps `image` (B, H, W, C) by `deformation` (B, h, w, 2) read in the coordinate grid's own convention.

  FOMM's `deform_input` resizes the deformation with align_corners=False and samples with grid_sample's
  align_corners=False, but the deformation's identity is `make_coordinate_grid` (align_corners=True
  positions): the no-motion warp then shrinks the frame by 1/(w - 1) about its centre (about 1 px at the
  border of a 64 px frame from a 32 px deformation). Harmless under a decoder, visible when the warped pixels
  are the output (`pixel_skip`): here the resize and the sampling both use the grid's convention, so the
  coordinate grid is exactly the identity.
  """
  h, w = image.shape[1:3]
  full = resize_bilinear(deformation.astype(jnp.float32), (h, w), align_corners=True)
  return grid_sample(image, to_sampling_coords(full, (h, w)))


def px_to_grid(points_px: jax.Array, image_size: int) -> jax.Array:
  """Pixel positions (pixel centres at integers) of an S x S frame -> the coordinate grid's convention,
  x = 2 px / (S - 1) - 1 (the seed's prior keypoints use 2 / S instead: `prior.au_keypoints`)."""
  return 2.0 * points_px / (float(image_size) - 1.0) - 1.0


def grid_to_px(points: jax.Array, image_size: int) -> jax.Array:
  """Inverse of `px_to_grid`: (x + 1) (S - 1) / 2."""
  return (points + 1.0) * (float(image_size) - 1.0) / 2.0


def kp2gaussian(
  mean: jax.Array, spatial_size: Sequence[int], kp_variance: float = 0.01
) -> jax.Array:
  """Gaussian-like map of each keypoint: exp(-|z - kp|^2 / (2 var)) on the coordinate grid.

  Args:
    mean: (B, K, 2) keypoint values (the original passes the kp dict; here the 'value' array).
    spatial_size: (H, W).
    kp_variance: 0.01 in every published config.

  Returns:
    (B, H, W, K) float32 (channels last, ready to concatenate with NHWC features).
  """
  grid = make_coordinate_grid(spatial_size)  # (H, W, 2)
  diff = grid[None, :, :, None, :] - mean.astype(jnp.float32)[:, None, None, :, :]
  return jnp.exp(-0.5 * jnp.sum(diff**2, axis=-1) / kp_variance)


def inverse_2x2(m: jax.Array) -> jax.Array:
  """Closed-form inverse of (..., 2, 2) matrices: adj(m) / det(m) (cheaper and batch-friendly vs linalg.inv)."""
  a, b = m[..., 0, 0], m[..., 0, 1]
  c, d = m[..., 1, 0], m[..., 1, 1]
  det = a * d - b * c
  inv = jnp.stack([jnp.stack([d, -b], -1), jnp.stack([-c, a], -1)], -2)
  return inv / det[..., None, None]


def matmul_2x2(a: jax.Array, b: jax.Array) -> jax.Array:
  """(..., 2, 2) @ (..., 2, 2) written out (exact float32, no reduced-precision matmul on accelerators)."""
  return jnp.stack(
    [
      jnp.stack(
        [
          a[..., 0, 0] * b[..., 0, 0] + a[..., 0, 1] * b[..., 1, 0],
          a[..., 0, 0] * b[..., 0, 1] + a[..., 0, 1] * b[..., 1, 1],
        ],
        -1,
      ),
      jnp.stack(
        [
          a[..., 1, 0] * b[..., 0, 0] + a[..., 1, 1] * b[..., 1, 0],
          a[..., 1, 0] * b[..., 0, 1] + a[..., 1, 1] * b[..., 1, 1],
        ],
        -1,
      ),
    ],
    -2,
  )
