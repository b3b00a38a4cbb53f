"""Training losses of the First Order Motion Model (Siarohin et al., NeurIPS 2019, arXiv:2003.00196).

* Perceptual pyramid loss (Sec. 3.4): `me_fomm.model.perceptual` (a model part: test-time
  personalisation uses it too).
* Equivariance constraints (Sec. 3.3, eq. 8-10) under a random thin-plate-spline warp T:
  value `|kp(D) - T(kp(T^-1 D))|` and Jacobian `|I - J_D^-1 (J_T J_{T^-1 D})|`.
* LSGAN (Mao et al. 2017) with pix2pixHD feature matching (Wang et al. 2018) when the GAN is on.
* Our landmark flow loss (off in the published configs).

All losses reduce to float32 scalars whatever the compute dtype.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

from me_fomm.model import geometry
from me_fomm.model.pyramid import scale_key


def equivariance_value_loss(kp_driving: jax.Array, kp_transformed_warped: jax.Array) -> jax.Array:
  """eq. 9: mean |kp(D) - T(kp(T^-1 D))|; `kp_transformed_warped` is already mapped back by T."""
  return jnp.mean(
    jnp.abs(kp_driving.astype(jnp.float32) - kp_transformed_warped.astype(jnp.float32))
  )


def equivariance_jacobian_loss(
  jac_driving: jax.Array, jac_tps: jax.Array, jac_transformed: jax.Array
) -> jax.Array:
  """eq. 10: mean |I - J_D^-1 (J_T J_{T^-1 D})| with J_T the TPS Jacobian at the transformed keypoints."""
  jd = jac_driving.astype(jnp.float32)
  jt = jnp.matmul(jac_tps.astype(jnp.float32), jac_transformed.astype(jnp.float32))
  value = jnp.matmul(geometry.inverse_2x2(jd), jt)
  return jnp.mean(jnp.abs(jnp.eye(2, dtype=jnp.float32) - value))


def lsgan_generator_loss(
  maps_generated: Mapping[str, jax.Array], scales: Sequence[float]
) -> jax.Array:
  """sum_s mean (1 - D_s(G))^2."""
  return sum(
    jnp.mean(jnp.square(1.0 - maps_generated[f"prediction_map_{scale_key(s)}"].astype(jnp.float32)))
    for s in scales
  )


def lsgan_discriminator_loss(
  maps_real: Mapping[str, jax.Array],
  maps_generated: Mapping[str, jax.Array],
  scales: Sequence[float],
) -> jax.Array:
  """sum_s mean [(1 - D_s(x))^2 + D_s(G)^2]."""
  total = jnp.zeros((), jnp.float32)
  for s in scales:
    r = maps_real[f"prediction_map_{scale_key(s)}"].astype(jnp.float32)
    g = maps_generated[f"prediction_map_{scale_key(s)}"].astype(jnp.float32)
    total += jnp.mean(jnp.square(1.0 - r) + jnp.square(g))
  return total


def feature_matching_loss(
  disc_real: Mapping, disc_generated: Mapping, scales: Sequence[float], weights: Sequence[float]
) -> jax.Array:
  """sum_s sum_i w_i mean |F_i(x) - F_i(G)| over the discriminator's intermediate feature maps."""
  total = jnp.zeros((), jnp.float32)
  for s in scales:
    real = disc_real[f"feature_maps_{scale_key(s)}"]
    gen = disc_generated[f"feature_maps_{scale_key(s)}"]
    if len(real) < len(weights):
      raise ValueError(
        f"config.loss.feature_matching has {len(weights)} weights but the "
        f"discriminator gives {len(real)} feature maps at scale {s}"
      )
    for w, a, b in zip(weights, real, gen):
      if w:
        total += w * jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))
  return total


def landmark_flow_loss(
  deformation: jax.Array, driving_landmarks: jax.Array, source_landmarks: jax.Array, image_size: int
) -> jax.Array:
  """Mean L1 distance, in pixels of the frame, between where the dense motion reads the source for each
  driving landmark and where that landmark really is in the source (our auxiliary loss, not FOMM's).

  The dense motion maps each output pixel to a source position (the backward flow of FOMM eq. 2), so the
  output pixel showing driving landmark p_d must read the source at landmark p_s. dlib's 68 landmarks are
  stored per frame for every corpus, so this supervises the flow at 68 points per frame and teaches the
  dense motion network to follow keypoint motion far sooner than the photometric loss alone (sub-pixel
  micro-expression motion gives that loss little gradient).

  The flow is read in the coordinate grid's convention, as `geometry.warp_exact` (the `pixel_skip` output)
  uses it; FOMM's feature warp reads the same field shrunk by 1/(w - 1) about the centre (see warp_exact).

  Args:
    deformation: (B, h, w, 2) the generator's `deformation`, at any resolution (read bilinearly, which is
      what the align-corners upsampling of `warp_exact` gives at that pixel).
    driving_landmarks, source_landmarks: (B, N, 2) pixels (x, y) of the frame, pixel centres at integers.
    image_size: the frame's size S.
  """
  s = float(image_size)
  field = deformation.astype(jnp.float32)
  at = geometry.to_sampling_coords(
    geometry.px_to_grid(driving_landmarks.astype(jnp.float32), image_size), field.shape[1:3]
  )
  read = geometry.grid_sample(field, at[:, None], padding_mode="reflection")[:, 0]  # (B, N, 2)
  target = geometry.px_to_grid(source_landmarks.astype(jnp.float32), image_size)
  return jnp.mean(jnp.abs(read - target)) * ((s - 1.0) / 2.0)
