"""Dense motion network (FOMM Sec. 3.2, modules/dense_motion.py), NHWC.

From the keypoints of source and driving frames it builds K+1 candidate backward warps (K local affine
transforms T_{S<-D}(z) = kp_S + J_S J_D^{-1} (z - kp_D) (Eq. 4) plus the identity for the background),
warps the downsampled source with each, and lets an hourglass predict soft masks that combine them into one
dense deformation (Eq. 6-7), plus an occlusion map.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from me_fomm.model import geometry, layers, pyramid

Dtype = Any


def heatmap_representation(spatial_size, kp_driving, kp_source, kp_variance):
  """H_k(z) = G(z; kp_D) - G(z; kp_S) with a zero background channel first: (B, h, w, K+1)."""
  heat = geometry.kp2gaussian(
    kp_driving["value"], spatial_size, kp_variance
  ) - geometry.kp2gaussian(kp_source["value"], spatial_size, kp_variance)
  zeros = jnp.zeros(heat.shape[:-1] + (1,), heat.dtype)
  return jnp.concatenate([zeros, heat], axis=-1)


def sparse_motions(spatial_size, kp_driving, kp_source):
  """(B, K+1, h, w, 2) sampling grids: identity, then T_{S<-D} of every keypoint (Eq. 4)."""
  h, w = spatial_size
  identity = geometry.make_coordinate_grid((h, w))  # (h, w, 2)
  kd = kp_driving["value"].astype(jnp.float32)
  ks = kp_source["value"].astype(jnp.float32)
  b, k, _ = kd.shape
  coords = identity[None, None] - kd[:, :, None, None, :]  # (B, K, h, w, 2)
  if "jacobian" in kp_driving:
    jac = geometry.matmul_2x2(
      kp_source["jacobian"].astype(jnp.float32),
      geometry.inverse_2x2(kp_driving["jacobian"].astype(jnp.float32)),
    )  # (B, K, 2, 2)
    jac = jac[:, :, None, None]
    coords = jnp.stack(
      [
        jac[..., 0, 0] * coords[..., 0] + jac[..., 0, 1] * coords[..., 1],
        jac[..., 1, 0] * coords[..., 0] + jac[..., 1, 1] * coords[..., 1],
      ],
      axis=-1,
    )
  driving_to_source = coords + ks[:, :, None, None, :]
  identity = jnp.broadcast_to(identity[None, None], (b, 1, h, w, 2))
  return jnp.concatenate([identity, driving_to_source], axis=1)


class DenseMotionNetwork(nn.Module):
  """Predicts 'deformation' (B, h, w, 2), 'mask' (B, h, w, K+1), 'sparse_deformed' (B, K+1, h, w, C) and
  'occlusion_map' (B, h, w, 1) at the downsampled resolution (h = H * scale_factor)."""

  num_kp: int
  num_channels: int = 3
  block_expansion: int = 64
  num_blocks: int = 5
  max_features: int = 1024
  estimate_occlusion_map: bool = True
  scale_factor: float = 0.25
  kp_variance: float = 0.01
  # Ours, off in the published models: also feed each keypoint's driving-frame Gaussian G(z; kp_D) (its
  # location), not only the difference G(kp_D) - G(kp_S). For the sub-pixel motion of a micro-expression
  # that difference is nearly zero, so the hourglass can only find a keypoint from the face's appearance,
  # which it learns for the training faces alone; with the location channel the masks can follow the
  # keypoints of any face.
  location_heatmaps: bool = False
  # Ours, 0 = off (the published models): added to each keypoint's mask logit, this weight times its
  # driving-frame Gaussian G(z; kp_D) (1 at the keypoint). With keypoints that follow landmarks on any
  # face (tip24) the masks then start from, and keep, "the motion of the keypoint nearest here" instead
  # of having to find the keypoints from appearance, which a few training faces cannot teach: on an
  # unseen face the learned masks mix each keypoint's motion with the still background's.
  mask_prior: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, source_image, kp_driving, kp_source, train: bool = False):
    source = pyramid.antialias_downsample(source_image, self.scale_factor)
    b, h, w, c = source.shape
    k1 = self.num_kp + 1
    heat = heatmap_representation((h, w), kp_driving, kp_source, self.kp_variance)  # (B, h, w, K+1)
    motion = sparse_motions((h, w), kp_driving, kp_source)  # (B, K+1, h, w, 2)
    # One gather over all K+1 grids at once; the source is not repeated K+1 times as in the original.
    deformed = geometry.grid_sample(source.astype(jnp.float32), motion)  # (B, K+1, h, w, C)
    out = {"sparse_deformed": deformed}

    # Hourglass input: per candidate k the channels [H_k, warped source], flattened k-major as torch's
    # view(bs, -1, h, w) of the (B, K+1, C+1, h, w) tensor.
    parts = [heat[..., None]]
    if self.location_heatmaps or self.mask_prior:
      loc = geometry.kp2gaussian(kp_driving["value"], (h, w), self.kp_variance)
      loc = jnp.concatenate([jnp.zeros_like(loc[..., :1]), loc], axis=-1)  # background first
    if self.location_heatmaps:
      parts.append(loc[..., None])
    stacked = jnp.concatenate(
      parts + [jnp.moveaxis(deformed, 1, 3)], axis=-1
    )  # (B, h, w, K+1, C+1 [+1])
    x = stacked.reshape(b, h, w, -1)
    prediction = layers.Hourglass(
      self.block_expansion, self.num_blocks, self.max_features, self.dtype, name="hourglass"
    )(x, train)
    mask = layers.Conv2d(k1, 7, 3, dtype=self.dtype, name="mask")(prediction).astype(jnp.float32)
    if self.mask_prior:
      mask = mask + self.mask_prior * loc.astype(jnp.float32)
    mask = jax.nn.softmax(mask, axis=-1)
    out["mask"] = mask
    out["deformation"] = jnp.einsum(
      "bhwk,bkhwc->bhwc", mask, motion, precision=jax.lax.Precision.HIGHEST
    )
    if self.estimate_occlusion_map:
      occ = layers.Conv2d(1, 7, 3, dtype=self.dtype, name="occlusion")(prediction)
      out["occlusion_map"] = jax.nn.sigmoid(occ.astype(jnp.float32))
    return out
