"""Training losses on known inputs (the perceptual loss: tests/model/test_perceptual.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.model import geometry
from me_fomm.train import losses


def test_equivariance_losses_vanish_for_consistent_keypoints():
  rng = np.random.default_rng(0)
  kp = jnp.asarray(rng.uniform(-1, 1, (2, 5, 2)), jnp.float32)
  assert float(losses.equivariance_value_loss(kp, kp)) == 0.0
  jac = jnp.asarray(rng.normal(0, 1, (2, 5, 2, 2)) + 2 * np.eye(2), jnp.float32)
  tps_jac = jnp.asarray(rng.normal(0, 1, (2, 5, 2, 2)) + 2 * np.eye(2), jnp.float32)
  # J_D = J_T J_t makes J_D^-1 J_T J_t = I.
  jd = jnp.matmul(tps_jac, jac)
  assert float(losses.equivariance_jacobian_loss(jd, tps_jac, jac)) < 1e-5
  assert float(losses.equivariance_jacobian_loss(jac, tps_jac, jac)) > 0.1


def test_lsgan_and_feature_matching_values():
  ones, zeros = jnp.ones((2, 4, 4, 1)), jnp.zeros((2, 4, 4, 1))
  assert float(losses.lsgan_generator_loss({"prediction_map_1": ones}, (1,))) == 0.0
  assert float(losses.lsgan_generator_loss({"prediction_map_1": zeros}, (1,))) == 1.0
  # Perfect discriminator: real -> 1, generated -> 0.
  assert (
    float(
      losses.lsgan_discriminator_loss({"prediction_map_1": ones}, {"prediction_map_1": zeros}, (1,))
    )
    == 0.0
  )
  assert (
    float(
      losses.lsgan_discriminator_loss({"prediction_map_1": zeros}, {"prediction_map_1": ones}, (1,))
    )
    == 2.0
  )
  real = {"feature_maps_1": [ones, ones]}
  gen = {"feature_maps_1": [zeros, ones]}
  assert float(losses.feature_matching_loss(real, gen, (1,), (10.0, 10.0))) == 10.0
  with pytest.raises(ValueError, match="feature maps"):
    losses.feature_matching_loss(real, gen, (1,), (10.0,) * 4)


def test_landmark_flow_loss_reads_the_flow_at_driving_landmarks_in_pixels():
  s = 64
  grid = jnp.broadcast_to(geometry.make_coordinate_grid((32, 32)), (2, 32, 32, 2))
  lm = jax.random.uniform(jax.random.key(1), (2, 68, 2)) * 40 + 12
  assert float(losses.landmark_flow_loss(grid, lm, lm, s)) == pytest.approx(0.0, abs=1e-5)
  # A flow reading the source 0.7 px right and 0.3 px up of every output pixel.
  flow = grid + jnp.array([0.7, -0.3]) * 2 / (s - 1)
  moved = lm + jnp.array([0.7, -0.3])
  assert float(losses.landmark_flow_loss(flow, lm, moved, s)) == pytest.approx(0.0, abs=1e-4)
  assert float(losses.landmark_flow_loss(flow, lm, lm, s)) == pytest.approx(
    0.5, abs=1e-4
  )  # (0.7 + 0.3) / 2
  # What the loss reads is what the pixel-skip warp does: a landmark's pixel shows the source there.
  img = jax.random.uniform(jax.random.key(2), (2, s, s, 3))
  warped = geometry.warp_exact(img, flow)
  np.testing.assert_allclose(
    warped[:, 20, 20],
    geometry.grid_sample(
      img,
      geometry.to_sampling_coords(geometry.px_to_grid(jnp.array([[[20.7, 19.7]]] * 2), s), (s, s)),
    )[:, 0],
    atol=1e-5,
  )
