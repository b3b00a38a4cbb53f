"""Region-focusing masks built from the 18 AU keypoints: the seed's fixed mask and the tip24 learned one.

Both start from one "heatmap" per keypoint on the keypoint detector's feature grid (64 x 64 for 256 x 256
frames, scale_factor 0.25):

    h_k(r, c) = exp(-sqrt(dist_k(r, c)) / (2 sigma^2)),   sigma = 0.75,

then divide each map by its maximum and zero the values below that map's mean, which keeps a compact blob
around each keypoint. The two variants differ in the distance and in how the 18 maps are merged:

- seed (MEGC2021, Necolizer/Facial-Prior-Based-FOMM, `make.get_distance_map`): dist is the L1 distance
  |r - y| + |c - x|; the maps are summed and the sum divided by its maximum -> one channel in [0, 1].
- tip24 ("Facial Prior Guided Micro-Expression Generation", Zhang et al., IEEE TIP 2024, the "adaptive
  weighted prior", sysu19351158/FPB-FOMM `FOMM_with_AWP/modules/mask_generator.py` and `keypoint_detector.py`):
  dist is the Euclidean distance sqrt((r - y)^2 + (c - x)^2) (the released code then still takes the square
  root inside the exponential, as the seed does, so the kernel is exp(-||.||^(1/2) / (2 sigma^2))); the 18
  maps are merged by two learned 3x3 convolutions, 18 -> 9 -> 1 (zero padding 1, bias, no activation).

Grid convention of the original (reproduced exactly): keypoints in frame pixels are scaled by grid / S
(S = frame size), and the grid cell (row i, column j), 0-based, sits at (i + 1, j + 1) -- the original builds
its grid with `itertools.product(range(1, H + 1), range(1, W + 1))`. The masks are computed in float32 with
JAX, batched and jittable (the original loops over the batch in NumPy on every forward pass).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.prior.au_keypoints import NUM_AU_KEYPOINTS

SEED_SIGMA = 0.75


def _check_keypoints(au_px: Any, name: str, num_kp: int) -> jax.Array:
  if isinstance(au_px, np.ndarray) and au_px.size and not np.all(np.isfinite(au_px)):
    raise ValueError(
      f"{name}: the AU keypoints contain NaN or inf; check the landmark detector output."
    )
  shape = tuple(au_px.shape) if hasattr(au_px, "shape") else tuple(np.shape(au_px))
  if len(shape) != 3 or shape[1:] != (num_kp, 2):
    raise ValueError(
      f"{name}: expected AU keypoints of shape (batch, {num_kp}, 2) in frame pixels (x, y), got shape "
      f"{shape}. Use me_fomm.prior.au_keypoints.landmarks_to_au on dlib's 68 landmarks (add a batch axis "
      "for a single face)."
    )
  return jnp.asarray(au_px, dtype=jnp.float32)


def _check_sizes(name: str, image_size: int, grid: int, sigma: float) -> None:
  if int(image_size) != image_size or image_size <= 0:
    raise ValueError(
      f"{name}: image_size must be a positive integer (frame size in pixels), got {image_size!r}."
    )
  if int(grid) != grid or grid <= 0:
    raise ValueError(f"{name}: grid must be a positive integer (feature grid size), got {grid!r}.")
  if not sigma > 0:
    raise ValueError(f"{name}: sigma must be positive, got {sigma!r}.")


def keypoint_heatmaps(
  au_px: jax.Array, image_size: int, grid: int, sigma: float, distance: str
) -> jax.Array:
  """Per-keypoint maps, each max-normalised with the values under its mean zeroed.

  Args:
    au_px: (B, K, 2) float32 keypoints in frame pixels (x, y).
    image_size: frame size S in pixels (square frames, as the original assumes).
    grid: output grid size G.
    sigma: the kernel's sigma.
    distance: 'l1' (seed) or 'l2' (tip24).

  Returns:
    (B, G, G, K) float32.
  """
  # The prior is a fixed function of dlib's landmarks (the original computes it in NumPy, outside autograd);
  # stopping the gradient also avoids the infinite derivative of sqrt at distance 0.
  kp = jax.lax.stop_gradient(au_px) * (grid / image_size)
  x = kp[:, None, None, :, 0]  # (B, 1, 1, K)
  y = kp[:, None, None, :, 1]
  coords = jnp.arange(1, grid + 1, dtype=jnp.float32)  # the original's 1-based grid
  dr = coords[None, :, None, None] - y  # (B, G, 1, K): row offset
  dc = coords[None, None, :, None] - x  # (B, 1, G, K): column offset
  if distance == "l1":
    dist = jnp.abs(dr) + jnp.abs(dc)
  elif distance == "l2":
    dist = jnp.sqrt(dr * dr + dc * dc)
  else:
    raise ValueError(f"keypoint_heatmaps: distance must be 'l1' or 'l2', got {distance!r}.")
  root = jnp.sqrt(dist)  # (B, G, G, K)
  # h / max(h) = exp(-(root - min(root)) / (2 sigma^2)): the same quantity, but it cannot underflow to 0/0
  # when a keypoint lies far outside the frame.
  root_min = jnp.min(root, axis=(1, 2), keepdims=True)
  maps = jnp.exp(-(root - root_min) / (2.0 * sigma**2))
  mean = jnp.mean(maps, axis=(1, 2), keepdims=True)
  return jnp.where(maps >= mean, maps, 0.0)


def seed_region_mask(
  au_px, image_size: int = 256, grid: int = 64, sigma: float = SEED_SIGMA
) -> jax.Array:
  """The MEGC2021 seed's region-focusing mask (`make.make_masks`), batched, in JAX.

  Args:
    au_px: (B, 18, 2) AU keypoints in frame pixels (x, y), from `landmarks_to_au`.
    image_size: frame size in pixels the keypoints refer to.
    grid: size of the square output (the keypoint detector's input after its anti-aliased downsampling).
    sigma: the seed's 0.75.

  Returns:
    (B, grid, grid, 1) float32 in [0, 1]; the 4th input channel of the seed's keypoint detector.
  """
  _check_sizes("seed_region_mask", image_size, grid, sigma)
  kp = _check_keypoints(au_px, "seed_region_mask(au_px)", NUM_AU_KEYPOINTS)
  total = jnp.sum(keypoint_heatmaps(kp, image_size, grid, sigma, "l1"), axis=-1, keepdims=True)
  # Every map has maximum 1, so the sum's maximum is >= 1: the division is safe.
  return total / jnp.max(total, axis=(1, 2), keepdims=True)


def _torch_conv_bias_init(fan_in: int):
  """PyTorch's default Conv2d bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in the released model."""
  bound = 1.0 / np.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class AdaptiveWeightedPrior(nn.Module):
  """tip24's adaptive weighted prior (AWP): 18 Euclidean keypoint maps merged by learned 3x3 convolutions.

  Follows the released code (sysu19351158/FPB-FOMM, FOMM_with_AWP): `learn` = Conv2d(K, K // 2, 3, padding 1)
  and `learn1` = Conv2d(K // 2, 1, 3, padding 1), applied in sequence without activation or normalisation.
  The submodule names match the original's parameter names (`kp_detector.learn.weight`, ...) for conversion.

  Attributes:
    num_kp: number of AU keypoints (18).
    image_size: frame size in pixels the keypoints refer to.
    grid: output grid size (64 for 256 x 256 frames).
    sigma: kernel sigma (0.75, as in the released code).
    dtype: compute dtype of the convolutions; parameters are float32.
  """

  num_kp: int = NUM_AU_KEYPOINTS
  image_size: int = 256
  grid: int = 64
  sigma: float = SEED_SIGMA
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, au_px) -> jax.Array:
    """au_px: (B, num_kp, 2) frame pixels (x, y) -> (B, grid, grid, 1) in `dtype`."""
    if self.num_kp < 2:
      raise ValueError(
        f"AdaptiveWeightedPrior: num_kp must be >= 2 (it is halved by the first conv), got {self.num_kp}."
      )
    _check_sizes("AdaptiveWeightedPrior", self.image_size, self.grid, self.sigma)
    kp = _check_keypoints(au_px, "AdaptiveWeightedPrior(au_px)", self.num_kp)
    maps = keypoint_heatmaps(kp, self.image_size, self.grid, self.sigma, "l2")
    hidden = self.num_kp // 2
    # PyTorch's default init (kaiming_uniform with a = sqrt(5)) is U(+-1/sqrt(fan_in)) = variance_scaling(1/3).
    torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    x = nn.Conv(
      hidden,
      (3, 3),
      padding=((1, 1), (1, 1)),
      dtype=self.dtype,
      param_dtype=jnp.float32,
      kernel_init=torch_kernel_init,
      bias_init=_torch_conv_bias_init(9 * self.num_kp),
      name="learn",
    )(maps)
    return nn.Conv(
      1,
      (3, 3),
      padding=((1, 1), (1, 1)),
      dtype=self.dtype,
      param_dtype=jnp.float32,
      kernel_init=torch_kernel_init,
      bias_init=_torch_conv_bias_init(9 * hidden),
      name="learn1",
    )(x)
