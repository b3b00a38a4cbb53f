"""Occlusion-aware generator (FOMM Sec. 3.2, modules/generator.py), NHWC.

Encode the source (7x7 same block, down blocks), warp the features with the dense motion's deformation,
multiply by the occlusion map, decode (residual bottleneck, up blocks, 7x7 conv, sigmoid).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from me_fomm.model import dense_motion, geometry, layers

Dtype = Any


def deform_input(inp, deformation):
  """Warp `inp` (B, H, W, C) by `deformation` (B, h, w, 2), bilinearly resized to H x W first if needed."""
  h, w = inp.shape[1:3]
  if deformation.shape[1:3] != (h, w):
    deformation = geometry.resize_bilinear(deformation, (h, w))
  return geometry.grid_sample(inp, deformation)


class Bottleneck(nn.Module):
  """The generator's residual bottleneck ('bottleneck.r0', 'bottleneck.r1', ... in the original)."""

  num_blocks: int
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    block = layers.maybe_remat(layers.ResBlock2d, self.remat)
    for i in range(self.num_blocks):
      x = block(3, 1, self.dtype, name=f"r{i}")(x, train)
    return x


class OcclusionAwareGenerator(nn.Module):
  """Source image + source/driving keypoints -> the driving frame's prediction (see DESIGN.md for the keys)."""

  num_kp: int
  num_channels: int = 3
  block_expansion: int = 64
  max_features: int = 512
  num_down_blocks: int = 2
  num_bottleneck_blocks: int = 6
  estimate_occlusion_map: bool = True
  dense_motion_params: Any = None  # dict(block_expansion, max_features, num_blocks, scale_factor)
  # Blend the warped source image into the output by the occlusion map (see config.py, `pixel_skip`).
  # Micro-expressions move a few pixels and disocclude almost nothing, so nearly every output pixel can be
  # read from the target photo itself; the decoder alone blurs them (a short training cannot teach it every
  # detail of an unseen face), the warp keeps them.
  pixel_skip: bool = False
  dtype: Dtype = jnp.float32
  # Rematerialise the encoder/decoder blocks (each keeps only its input for the backward pass) and the
  # whole dense motion network (its K+1 warped copies of the source and its hourglass): less memory for
  # about one more forward pass of those parts.
  remat: bool = False

  @nn.compact
  def __call__(
    self, source_image, kp_source=None, kp_driving=None, train: bool = False, encoded=None
  ):
    """`source_image` (B, H, W, C), or (1, H, W, C) for B driving frames of one source (generation):
    that source is then encoded once, not once per frame, and the features shared.

    With `kp_driving=None` only the encoder runs: returns {"encoded": features}. Passed back as
    `encoded` with the same source image, they replace the encoder's pass, so a target animated
    call after call (one frame at a time) is encoded once (`me_fomm.generate.animate.Animator`).
    """
    be, mf, nd = self.block_expansion, self.max_features, self.num_down_blocks
    remat = lambda cls, static=(2,): layers.maybe_remat(cls, self.remat, static)
    if encoded is None:
      out = remat(layers.SameBlock2d)(be, 7, 3, self.dtype, name="first")(source_image, train)
      for i in range(nd):
        out = remat(layers.DownBlock2d)(
          min(mf, be * 2 ** (i + 1)), self.dtype, name=f"down_blocks_{i}"
        )(out, train)
    else:
      out = encoded
    if kp_driving is None:
      return {"encoded": out}
    b = kp_driving["value"].shape[0]
    if source_image.shape[0] not in (1, b) or out.shape[0] != source_image.shape[0]:
      raise ValueError(
        f"generator: {source_image.shape[0]} source images ({out.shape[0]} encoded) for {b} "
        "driving keypoint sets; give one per driving frame, or one for all"
      )
    if source_image.shape[0] != b:
      out = jnp.broadcast_to(out, (b,) + out.shape[1:])
      source_image = jnp.broadcast_to(source_image, (b,) + source_image.shape[1:])

    output = {}
    if self.dense_motion_params is not None:
      # Positional arguments: under remat `train` (index 4 counting self) must be static.
      dm = remat(dense_motion.DenseMotionNetwork, (4,))(
        num_kp=self.num_kp,
        num_channels=self.num_channels,
        estimate_occlusion_map=self.estimate_occlusion_map,
        dtype=self.dtype,
        name="dense_motion_network",
        **dict(self.dense_motion_params),
      )(source_image, kp_driving, kp_source, train)
      output["mask"] = dm["mask"]
      output["sparse_deformed"] = dm["sparse_deformed"]
      deformation = dm["deformation"]
      output["deformation"] = deformation
      out = deform_input(out, deformation)
      if "occlusion_map" in dm:
        occ = dm["occlusion_map"]
        output["occlusion_map"] = occ
        if occ.shape[1:3] != out.shape[1:3]:
          occ = geometry.resize_bilinear(occ, out.shape[1:3])
        out = out * occ.astype(out.dtype)
      output["deformed"] = deform_input(source_image.astype(jnp.float32), deformation)

    out = Bottleneck(self.num_bottleneck_blocks, self.dtype, self.remat, name="bottleneck")(
      out, train
    )
    for i in range(nd):
      out = remat(layers.UpBlock2d)(
        min(mf, be * 2 ** (nd - i - 1)), self.dtype, name=f"up_blocks_{i}"
      )(out, train)
    out = layers.Conv2d(self.num_channels, 7, 3, dtype=self.dtype, name="final")(out)
    prediction = jax.nn.sigmoid(out.astype(jnp.float32))
    if self.pixel_skip:
      if "occlusion_map" not in output:
        raise ValueError(
          "pixel_skip needs the dense motion network and estimate_occlusion_map=True"
        )
      occ = geometry.resize_bilinear(
        output["occlusion_map"].astype(jnp.float32), prediction.shape[1:3]
      )
      output["decoded"] = prediction
      output["warped_source"] = geometry.warp_exact(
        source_image.astype(jnp.float32), output["deformation"]
      )
      prediction = occ * output["warped_source"] + (1.0 - occ) * prediction
    output["prediction"] = prediction
    return output
