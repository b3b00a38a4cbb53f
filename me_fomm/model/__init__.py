"""The three model stages as Flax Linen modules, built from a model config (see DESIGN.md "Modules").

cfg = model_config('fomm')
models = build_models(cfg)
variables = init_variables(models, cfg, jax.random.key(0))
kp = models.kp_detector.apply(variables['kp_detector'], image)
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from me_fomm.model.config import from_original, model_config, validate
from me_fomm.model.discriminator import MultiScaleDiscriminator
from me_fomm.model.generator import OcclusionAwareGenerator
from me_fomm.model.keypoint_detector import KPDetector
from me_fomm.model.pyramid import image_pyramid

__all__ = [
  "Models",
  "build_models",
  "init_variables",
  "check_inputs",
  "compute_dtype",
  "count_params",
  "model_config",
  "from_original",
]


class Models(NamedTuple):
  kp_detector: nn.Module
  generator: nn.Module
  discriminator: nn.Module


def compute_dtype(cfg):
  """The dtype the modules compute in (`cfg.dtype`); parameters and losses stay float32."""
  return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


def _fields(section, names: str) -> dict:
  return {n: section[n] for n in names.split()}


def build_models(cfg: ml_collections.ConfigDict, remat: bool = False) -> Models:
  """The keypoint detector, occlusion-aware generator and multi-scale discriminator of `cfg`.

  `remat`: recompute the activations of the heavy blocks (keypoint detector hourglass, generator
  encoder/decoder blocks, dense motion network) in the backward pass instead of storing them, for
  bigger batches where device memory is the limit. Same parameters and same values; it is a training
  option (the training config's `remat`), not part of the model config, so checkpoints do not record it.
  """
  validate(cfg)
  # Fields every module takes from the top level of the config.
  common = dict(num_kp=cfg.num_kp, num_channels=cfg.num_channels, dtype=compute_dtype(cfg))
  kp_detector = KPDetector(
    **common,
    **_fields(cfg.kp_detector, "block_expansion max_features num_blocks temperature scale_factor"),
    estimate_jacobian=cfg.estimate_jacobian,
    kp_mode=cfg.kp_mode,
    prior_mask=cfg.prior_mask,
    remat=remat,
  )
  g = cfg.generator
  generator = OcclusionAwareGenerator(
    **common,
    **_fields(
      g,
      "block_expansion max_features num_down_blocks num_bottleneck_blocks estimate_occlusion_map",
    ),
    pixel_skip=bool(g.get("pixel_skip", False)),
    dense_motion_params=dict(g.dense_motion),
    remat=remat,
  )
  d = cfg.discriminator
  discriminator = MultiScaleDiscriminator(
    **common,
    **_fields(d, "block_expansion num_blocks max_features sn use_kp"),
    scales=tuple(d.scales),
  )
  return Models(kp_detector, generator, discriminator)


def _dummy_inputs(cfg, batch=1):
  s, c, k = cfg.image_size, cfg.num_channels, cfg.num_kp
  image = jnp.zeros((batch, s, s, c), jnp.float32)
  # Spread keypoints so the dummy forward has no degenerate (singular) Jacobians.
  value = jnp.asarray(
    np.stack(np.meshgrid(np.linspace(-0.5, 0.5, k), [0.0]), -1).reshape(1, k, 2), jnp.float32
  ).repeat(batch, 0)
  kp = {"value": value}
  if cfg.estimate_jacobian:
    kp["jacobian"] = jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (batch, k, 2, 2))
  prior = {"value": value} if cfg.kp_mode == "prior" else None
  return image, kp, prior


def _init_key(rng):
  """The key `init_variables` draws with: an 'rbg' key derived deterministically from `rng` (a typed key, a
  raw uint32 key or an int seed). The one place that works around a slow compile of the init:

  Flax draws every parameter with its own fold_in + uniform; with threefry each becomes an unrolled hash
  in the HLO and XLA takes tens of seconds to compile the init on CPU (6x slower than with rbg, measured).
  The init values are drawn once, so rbg's weaker cross-backend reproducibility does not matter here.
  An int seed (training passes `config.seed`) starts from an 'unsafe_rbg' key of that seed, the key the
  trainer has always initialised with, so a seed keeps giving the initial values it gave before.
  """
  if isinstance(rng, (int, np.integer)):
    rng = jax.random.key(int(rng), impl="unsafe_rbg")
  elif not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    if rng.dtype != jnp.uint32:
      raise ValueError(
        f"init_variables: rng must be a jax.random.key, a raw uint32 PRNGKey or an int seed, "
        f"got dtype {rng.dtype}"
      )
    rng = jax.random.wrap_key_data(rng)
  if jax.random.key_impl(rng) == jax.random.key_impl(jax.random.key(0, impl="rbg")):
    return rng
  data = jax.random.key_data(jax.random.split(rng, 2)).reshape(-1)[:4]
  return jax.random.wrap_key_data(data.astype(jnp.uint32), impl="rbg")


def init_variables(models: Models, cfg: ml_collections.ConfigDict, rng) -> dict:
  """Fresh variables {'kp_detector': {'params', 'batch_stats'}, 'generator': ..., 'discriminator': ...}.

  Parameters follow PyTorch's default initialisation (and the original's identity Jacobian head), so a
  fresh model starts where the original's training started. `rng`: a typed key, a raw uint32 key or an
  int seed (what training passes; see `_init_key`).
  """
  image, kp, prior = _dummy_inputs(cfg)
  use_kp = cfg.discriminator.use_kp
  scales = tuple(cfg.discriminator.scales)

  rng = _init_key(rng)

  # One jitted init: op-by-op (eager) initialisation of the generator is many times slower on CPU.
  @jax.jit
  def init(rng):
    k1, k2, k3 = jax.random.split(rng, 3)
    pyr = image_pyramid(image, scales)
    return {
      "kp_detector": dict(models.kp_detector.init(k1, image, prior=prior, train=False)),
      "generator": dict(models.generator.init(k2, image, kp_source=kp, kp_driving=kp, train=False)),
      "discriminator": dict(
        models.discriminator.init(k3, pyr, kp=kp if use_kp else None, train=False)
      ),
    }

  return init(rng)


def abstract_variables(models: Models, cfg: ml_collections.ConfigDict) -> dict:
  """Shapes/dtypes of `init_variables` via jax.eval_shape (nothing allocated)."""
  return jax.eval_shape(lambda r: init_variables(models, cfg, r), jax.random.key(0))


def count_params(variables) -> int:
  """Number of trainable parameters (the 'params' collection), as torch's sum(p.numel())."""
  tree = variables.get("params", variables)
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def check_inputs(
  cfg: ml_collections.ConfigDict, image=None, kp=None, prior=None, where: str = "input"
) -> None:
  """Validates concrete inputs before they enter jit (call from CLIs / generation); raises ValueError.

  Checks the image is (B, H, W, num_channels) float in [0, 1] (uint8 is rejected with a hint), keypoint
  dicts have (B, num_kp, 2) values and (B, num_kp, 2, 2) Jacobians, and everything is finite.
  """

  def fail(msg):
    raise ValueError(f"{where}: {msg}")

  if image is not None:
    a = np.asarray(image)
    if a.ndim != 4 or a.shape[-1] != cfg.num_channels:
      fail(
        f"image must be (B, H, W, {cfg.num_channels}) NHWC, got shape {a.shape}"
        + (
          " (looks NCHW; transpose to NHWC)"
          if a.ndim == 4 and a.shape[1] == cfg.num_channels
          else ""
        )
      )
    if a.dtype == np.uint8:
      fail("image is uint8; convert to float32 in [0, 1] (image.astype(np.float32) / 255)")
    if not np.issubdtype(a.dtype, np.floating):
      fail(f"image dtype {a.dtype} is not a float type; use float32 in [0, 1]")
    if not np.all(np.isfinite(a)):
      fail(f"image has {int(np.sum(~np.isfinite(a)))} non-finite values (NaN/inf)")
    if a.size and (a.min() < -1e-3 or a.max() > 1 + 1e-3):
      fail(f"image values span [{a.min():.3g}, {a.max():.3g}], expected [0, 1]")
    step = 2**cfg.kp_detector.num_blocks / cfg.kp_detector.scale_factor
    if a.shape[1] % step or a.shape[2] % step:
      fail(
        f"image size {a.shape[1]}x{a.shape[2]} must be a multiple of {int(step)} for this config"
      )
  for name, d in (("kp", kp), ("prior", prior)):
    if d is None:
      continue
    if "value" not in d:
      fail(f"{name} has no 'value' entry (keys: {sorted(d)})")
    v = np.asarray(d["value"])
    if v.ndim != 3 or v.shape[1:] != (cfg.num_kp, 2):
      fail(
        f"{name}['value'] must be (B, {cfg.num_kp}, 2), got {v.shape}"
        + (
          " (18 AU keypoints come from me_fomm.prior.au_keypoints.landmarks_to_au)"
          if v.shape[-2:] == (68, 2)
          else ""
        )
      )
    if not np.all(np.isfinite(v)):
      fail(f"{name}['value'] has non-finite values")
    if name == "kp" and "jacobian" in d:
      j = np.asarray(d["jacobian"])
      if j.shape != v.shape[:2] + (2, 2):
        fail(f"kp['jacobian'] must be {v.shape[:2] + (2, 2)}, got {j.shape}")
      if not np.all(np.isfinite(j)):
        fail("kp['jacobian'] has non-finite values")
  if image is not None:
    for name, d in (("kp", kp), ("prior", prior)):
      if d is not None and np.asarray(d["value"]).shape[0] != np.asarray(image).shape[0]:
        fail(
          f"batch sizes differ: image {np.asarray(image).shape[0]}, {name} {np.asarray(d['value']).shape[0]}"
        )
