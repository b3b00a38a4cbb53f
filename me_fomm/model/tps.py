"""Random thin-plate-spline warps of the equivariance loss (FOMM Sec. 3.3, `Transform` in modules/model.py).

A transform is a dict of arrays (a pytree, so it passes through jit):
  theta          (B, 2, 3)   affine part, identity + N(0, sigma_affine)
  control_points (1, P, P, 2) the P x P coordinate grid (absent without the TPS part)
  control_params (B, 1, P*P) TPS weights, N(0, sigma_tps)
The warp is  T(z) = A z + t + sum_i w_i r_i^2 log(r_i + 1e-6),  r_i = |z - c_i|_1  (the original uses the
L1 distance and the 1e-6 inside the log; both are kept for parity).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from me_fomm.model import geometry


def sample_tps(
  rng,
  batch: int,
  sigma_affine: float,
  sigma_tps: float | None = None,
  points_tps: int | None = None,
) -> dict:
  """Draws a random transform per sample; no TPS part when sigma_tps or points_tps is None."""
  k1, k2 = jax.random.split(rng)
  theta = sigma_affine * jax.random.normal(k1, (batch, 2, 3), jnp.float32) + jnp.eye(
    2, 3, dtype=jnp.float32
  )
  out = {"theta": theta}
  if sigma_tps is not None and points_tps is not None:
    out["control_points"] = geometry.make_coordinate_grid((points_tps, points_tps))[None]
    out["control_params"] = sigma_tps * jax.random.normal(
      k2, (batch, 1, points_tps**2), jnp.float32
    )
  return out


def warp_coordinates(tps: dict, coordinates: jax.Array) -> jax.Array:
  """Applies the transform to (B, N, 2) points (x, y) -> (B, N, 2)."""
  theta = tps["theta"].astype(jnp.float32)
  c = coordinates.astype(jnp.float32)
  if c.ndim != 3 or c.shape[-1] != 2:
    raise ValueError(f"warp_coordinates: coordinates must be (B, N, 2), got {c.shape}")
  out = (
    jnp.einsum("bij,bnj->bni", theta[:, :, :2], c, precision=jax.lax.Precision.HIGHEST)
    + theta[:, None, :, 2]
  )
  if "control_points" in tps:
    cp = tps["control_points"].reshape(1, 1, -1, 2)
    dist = jnp.sum(jnp.abs(c[:, :, None, :] - cp), axis=-1)  # (B, N, P*P), L1 as the original
    r = dist**2 * jnp.log(dist + 1e-6)
    r = jnp.sum(
      r * tps["control_params"].astype(jnp.float32), axis=-1
    )  # (B, N) (params broadcast (B, 1, P*P))
    out = out + r[..., None]
  return out


def transform_frame(tps: dict, frame: jax.Array) -> jax.Array:
  """Warps (B, H, W, C) frames: sample at T(grid) with reflection padding (as the original)."""
  b, h, w, _ = frame.shape
  grid = geometry.make_coordinate_grid((h, w)).reshape(1, h * w, 2)
  grid = jnp.broadcast_to(grid, (b, h * w, 2))
  warped = warp_coordinates(tps, grid).reshape(b, h, w, 2)
  return geometry.grid_sample(frame, warped, padding_mode="reflection")


def jacobian(tps: dict, coordinates: jax.Array) -> jax.Array:
  """(B, N, 2, 2) Jacobian dT/dz at each point (rows: output x, y), by forward-mode autodiff per point."""

  def point_warp(b_tps, z):  # one sample's transform of one point
    return warp_coordinates(jax.tree_util.tree_map(lambda a: a[None], b_tps), z[None, None])[0, 0]

  per_sample = {k: v for k, v in tps.items() if k != "control_points"}
  shared = {k: v for k, v in tps.items() if k == "control_points"}

  def sample_jac(sample_tps, pts):
    full = dict(sample_tps, **{k: v[0] for k, v in shared.items()})
    return jax.vmap(lambda z: jax.jacfwd(lambda q: point_warp(full, q))(z))(pts)

  return jax.vmap(sample_jac)(per_sample, coordinates.astype(jnp.float32))
