"""The random thin-plate-spline warp of the equivariance losses."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from small_models import images

from me_fomm.model import tps


def test_tps_sample_and_jacobian_by_finite_differences():
  t = jax.jit(
    functools.partial(tps.sample_tps, batch=2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5)
  )(jax.random.key(0))
  assert t["theta"].shape == (2, 2, 3) and t["control_points"].shape == (1, 5, 5, 2)
  assert t["control_params"].shape == (2, 1, 25)
  pts = jnp.asarray(np.random.default_rng(1).uniform(-0.9, 0.9, (2, 3, 2)), jnp.float32)
  jac = jax.jit(tps.jacobian)(t, pts)
  eps = 1e-3
  warp = jax.jit(tps.warp_coordinates)
  for axis in range(2):
    d = jnp.zeros_like(pts).at[..., axis].set(eps)
    numeric = (warp(t, pts + d) - warp(t, pts - d)) / (2 * eps)
    np.testing.assert_allclose(jac[..., axis], numeric, atol=2e-3)
  affine = tps.sample_tps(jax.random.key(2), 2, sigma_affine=0.1)
  assert "control_points" not in affine
  np.testing.assert_allclose(
    jax.jit(tps.jacobian)(affine, pts), np.repeat(affine["theta"][:, None, :, :2], 3, 1), atol=1e-6
  )
  frame = jax.jit(tps.transform_frame)(t, images(2, 16))
  assert frame.shape == (2, 16, 16, 3) and bool(jnp.all(jnp.isfinite(frame)))
