"""Coordinate grids, PyTorch-compatible sampling and resizing, Gaussian keypoint maps, 2x2 algebra."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small_models import images

from me_fomm.model import geometry


def _grid_sample_reference(img, grid, padding):
  """Direct per-point transcription of torch's bilinear grid_sample (align_corners=False), float64."""
  n, h, w, c = img.shape
  out = np.zeros(grid.shape[:-1] + (c,))

  def reflect(x, size):
    lo, span = -0.5, size
    x = abs(x - lo)
    extra, flips = x % span, np.floor(x / span)
    x = extra + lo if flips % 2 == 0 else span - extra + lo
    return min(max(x, 0), size - 1)

  for b in range(n):
    for idx in np.ndindex(grid.shape[1:-1]):
      gx, gy = grid[(b,) + idx]
      x, y = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
      if padding == "reflection":
        x, y = reflect(x, w), reflect(y, h)
      x0, y0 = int(np.floor(x)), int(np.floor(y))
      val = np.zeros(c)
      for xi, yi, wt in (
        (x0, y0, (x0 + 1 - x) * (y0 + 1 - y)),
        (x0 + 1, y0, (x - x0) * (y0 + 1 - y)),
        (x0, y0 + 1, (x0 + 1 - x) * (y - y0)),
        (x0 + 1, y0 + 1, (x - x0) * (y - y0)),
      ):
        if 0 <= xi < w and 0 <= yi < h:
          val += wt * img[b, yi, xi]
      out[(b,) + idx] = val
  return out


@pytest.mark.parametrize("padding", ["zeros", "reflection"])
def test_grid_sample_matches_direct_transcription(padding):
  rng = np.random.default_rng(0)
  img = rng.uniform(size=(2, 5, 7, 3)).astype(np.float32)
  grid = rng.uniform(-1.6, 1.6, size=(2, 4, 6, 2)).astype(np.float32)  # includes points outside
  got = geometry.grid_sample(jnp.asarray(img), jnp.asarray(grid), padding_mode=padding)
  np.testing.assert_allclose(got, _grid_sample_reference(img, grid, padding), atol=1e-5)


def test_grid_sample_pixel_centres_and_gradient():
  img = jax.random.uniform(jax.random.key(1), (1, 6, 8, 2))
  ys, xs = np.meshgrid(
    (2 * np.arange(6) + 1) / 6 - 1, (2 * np.arange(8) + 1) / 8 - 1, indexing="ij"
  )
  centres = jnp.asarray(np.stack([xs, ys], -1)[None], jnp.float32)
  np.testing.assert_allclose(geometry.grid_sample(img, centres), img, atol=1e-6)

  def f(g):
    return jnp.sum(geometry.grid_sample(img, g) ** 2)

  g0 = centres + 0.03
  grad = jax.grad(f)(g0)
  eps = 1e-3
  d = jnp.zeros_like(g0).at[0, 2, 3, 0].set(eps)
  numeric = (f(g0 + d) - f(g0 - d)) / (2 * eps)
  np.testing.assert_allclose(grad[0, 2, 3, 0], numeric, rtol=2e-2, atol=1e-4)


def test_resize_bilinear_equals_half_pixel_resize():
  x = jax.random.normal(jax.random.key(2), (2, 8, 8, 2))
  got = geometry.resize_bilinear(x, (32, 32))
  want = jax.image.resize(x, (2, 32, 32, 2), "bilinear")  # half-pixel centres = align_corners=False
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_inverse_and_matmul_2x2():
  m = np.random.default_rng(1).normal(size=(3, 4, 2, 2)).astype(np.float32) + 2 * np.eye(
    2, dtype=np.float32
  )
  np.testing.assert_allclose(
    geometry.inverse_2x2(jnp.asarray(m)), np.linalg.inv(m), rtol=1e-4, atol=1e-5
  )
  np.testing.assert_allclose(
    geometry.matmul_2x2(jnp.asarray(m), jnp.asarray(m)), m @ m, rtol=1e-5, atol=1e-5
  )


def test_kp2gaussian_peaks_at_keypoint():
  heat = geometry.kp2gaussian(jnp.asarray([[[-1.0, -1.0], [1.0, 1.0]]]), (9, 9))
  assert heat.shape == (1, 9, 9, 2)
  assert heat[0, 0, 0, 0] == 1.0 and heat[0, 8, 8, 1] == 1.0 and heat[0, 8, 8, 0] < 1e-6


def test_warp_exact_identity_and_shift_unlike_fomm_deform_input():
  # The coordinate grid is the exact identity for warp_exact; FOMM's deform_input shrinks the frame by
  # 1/(w - 1) about the centre (the reason pixel_skip uses warp_exact).
  img = images(2, 64)
  grid = jnp.broadcast_to(geometry.make_coordinate_grid((16, 16)), (2, 16, 16, 2))
  np.testing.assert_allclose(geometry.warp_exact(img, grid), img, atol=1e-4)
  fomm = geometry.grid_sample(img, geometry.resize_bilinear(grid, (64, 64)))
  assert float(jnp.abs(fomm - img).mean()) > 0.05
  # Reading the source one pixel to the right everywhere = the image shifted left by one pixel.
  shifted = geometry.warp_exact(img, grid + jnp.array([2.0 / 63, 0.0]))
  np.testing.assert_allclose(shifted[:, :, :-1], img[:, :, 1:], atol=1e-4)
  np.testing.assert_allclose(
    geometry.px_to_grid(jnp.array([0.0, 31.5, 63.0]), 64), [-1.0, 0.0, 1.0], atol=1e-6
  )


def test_pixel_conventions_of_the_grid_and_of_the_seed_prior():
  from me_fomm.prior.au_keypoints import au_px_to_value, value_to_au_px

  px = jnp.array([0.0, 31.5, 63.0])
  # The coordinate grid: pixel centres 0 .. S - 1 span [-1, 1].
  np.testing.assert_allclose(geometry.px_to_grid(px, 64), [-1.0, 0.0, 1.0], atol=1e-6)
  np.testing.assert_allclose(geometry.grid_to_px(geometry.px_to_grid(px, 64), 64), px, atol=1e-5)
  # The seed's prior values divide by S: the same pixels land 1/S short of the grid's.
  np.testing.assert_allclose(au_px_to_value(px, 64), [-1.0, -1 / 64, 1 - 2 / 64], atol=1e-6)
  np.testing.assert_allclose(value_to_au_px(au_px_to_value(px, 64), 64), px, atol=1e-5)
