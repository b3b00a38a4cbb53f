"""Keypoint detector (FOMM Sec. 3.1) in its two modes.

* `learned` (FOMM): hourglass on the anti-aliased, downsampled image; a 7x7 conv (no padding) gives one
  heatmap per keypoint, softmax with temperature over all positions; the keypoint is the heatmap's expected
  coordinate and the Jacobian is the heatmap-weighted mean of a 4-channel map per keypoint.
* `prior` (MEGC2021 seed, Necolizer/Facial-Prior-Based-FOMM): keypoint values are the 18 facial AU keypoints
  from dlib; a region-focusing mask built from them is concatenated to the downsampled image as a 4th input
  channel, and the heatmaps only pool the Jacobians. The mask is the seed's fixed one (`prior_mask='seed'`)
  or the learned adaptive weighted prior of the journal follow-up (`prior_mask='adaptive'`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from me_fomm.model import geometry, layers, pyramid

Dtype = Any


def _jacobian_bias_init(num_maps: int):
  """Identity Jacobian at the start of training: bias [1, 0, 0, 1] per map (the original's init)."""

  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.tile(jnp.array([1.0, 0.0, 0.0, 1.0], dtype), num_maps).reshape(shape)

  return init


class KPDetector(nn.Module):
  """Keypoints and local affine Jacobians of an image.

  Attributes mirror the original constructor; `kp_mode` / `prior_mask` select the seed's prior mode.
  """

  num_kp: int
  num_channels: int = 3
  block_expansion: int = 32
  max_features: int = 1024
  num_blocks: int = 5
  temperature: float = 0.1
  scale_factor: float = 0.25
  estimate_jacobian: bool = True
  kp_mode: str = "learned"
  prior_mask: str = "none"
  dtype: Dtype = jnp.float32
  remat: bool = False  # recompute the hourglass's activations in the backward pass (less memory)

  def region_mask(self, prior_value: jax.Array, image_size: int, grid: int) -> jax.Array:
    """(B, grid, grid, 1) region-focusing mask from AU keypoints in [-1, 1] (seed: value = px * 2/256 - 1)."""
    # The prior package owns the mask formulas and the seed's value convention.
    from me_fomm.prior import region_mask as rm
    from me_fomm.prior.au_keypoints import value_to_au_px

    au_px = value_to_au_px(prior_value.astype(jnp.float32), image_size)
    if self.prior_mask == "seed":
      return rm.seed_region_mask(au_px, image_size=image_size, grid=grid, sigma=0.75)
    # tip24: learned; its convs live under 'prior' (the converter maps the original's learn/learn1 there).
    return rm.AdaptiveWeightedPrior(
      num_kp=self.num_kp, image_size=image_size, grid=grid, dtype=self.dtype, name="prior"
    )(au_px)

  @nn.compact
  def __call__(self, image, prior=None, train: bool = False):
    """Args:
      image: (B, H, W, C) float in [0, 1].
      prior: kp_mode 'prior' only: {'value': (B, K, 2) AU keypoints in [-1, 1]} and optionally 'mask'
        (B, h, w, 1), a precomputed region mask at the downsampled size (skips computing it here).
      train: BatchNorm uses batch statistics (call with mutable=['batch_stats']).

    Returns:
      {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)} float32 (no 'jacobian' when estimate_jacobian is off).
    """
    x = pyramid.antialias_downsample(image, self.scale_factor)
    if self.kp_mode == "prior":
      if prior is None or "value" not in prior:
        raise ValueError(
          "KPDetector(kp_mode='prior'): pass prior={'value': (B, K, 2) AU keypoints in [-1, 1]}"
          " (me_fomm.prior.inputs.keypoint_prior of the dlib landmarks)"
        )
      if prior["value"].shape != (image.shape[0], self.num_kp, 2):
        raise ValueError(
          f"KPDetector: prior['value'] must be {(image.shape[0], self.num_kp, 2)}, "
          f"got {prior['value'].shape}"
        )
      mask = prior.get("mask")
      if mask is None:
        mask = self.region_mask(prior["value"], image.shape[1], x.shape[1])
      mask = jax.lax.stop_gradient(mask) if self.prior_mask == "seed" else mask
      x = jnp.concatenate([x, mask.astype(x.dtype)], axis=-1)
    elif prior is not None:
      raise ValueError(
        "KPDetector(kp_mode='learned') takes no prior; use the 'seed' or 'tip24' variant for "
        "facial-prior keypoints"
      )

    hourglass = layers.maybe_remat(layers.Hourglass, self.remat)
    feature_map = hourglass(
      self.block_expansion, self.num_blocks, self.max_features, self.dtype, name="predictor"
    )(x, train)
    prediction = layers.Conv2d(self.num_kp, 7, 0, dtype=self.dtype, name="kp")(feature_map)
    b, h, w, k = prediction.shape
    # Softmax over all positions in float32: the temperature (0.1) sharpens the logits 10x.
    logits = prediction.astype(jnp.float32).reshape(b, h * w, k) / self.temperature
    heatmap = jax.nn.softmax(logits, axis=1).reshape(b, h, w, k)

    if self.kp_mode == "prior":
      out = {"value": prior["value"].astype(jnp.float32)}
    else:
      grid = geometry.make_coordinate_grid((h, w))
      out = {
        "value": jnp.einsum("bhwk,hwc->bkc", heatmap, grid, precision=jax.lax.Precision.HIGHEST)
      }

    if self.estimate_jacobian:
      jac_map = layers.Conv2d(
        4 * self.num_kp,
        7,
        0,
        dtype=self.dtype,
        kernel_init=nn.initializers.zeros,
        bias_init=_jacobian_bias_init(self.num_kp),
        name="jacobian",
      )(feature_map)
      jac_map = jac_map.astype(jnp.float32).reshape(
        b, h, w, k, 4
      )  # channel = kp * 4 + entry, as torch
      jac = jnp.einsum("bhwk,bhwkj->bkj", heatmap, jac_map, precision=jax.lax.Precision.HIGHEST)
      out["jacobian"] = jac.reshape(b, k, 2, 2)
    return out
