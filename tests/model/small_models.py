"""Small model configs and fresh variables shared by the unit tests of this folder."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from me_fomm import model as model_lib
from me_fomm.model import config as config_lib


def small_config(variant="fomm", **overrides):
  """A tiny but complete config: 64x64 images, narrow widths, 3-block hourglasses."""
  base = {
    "image_size": 64,
    "kp_detector.block_expansion": 4,
    "kp_detector.max_features": 16,
    "kp_detector.num_blocks": 3,
    "generator.block_expansion": 4,
    "generator.max_features": 16,
    "generator.num_bottleneck_blocks": 1,
    "generator.dense_motion.block_expansion": 4,
    "generator.dense_motion.max_features": 16,
    "generator.dense_motion.num_blocks": 3,
    "discriminator.block_expansion": 4,
    "discriminator.max_features": 16,
  }
  if variant == "fomm":
    base["num_kp"] = 4
  base.update(overrides)
  return config_lib.model_config(variant, **base)


@functools.lru_cache(maxsize=None)
def small_setup(variant="fomm", dtype="float32"):
  cfg = small_config(variant, dtype=dtype)
  models = model_lib.build_models(cfg)
  variables = model_lib.init_variables(models, cfg, jax.random.key(0))
  return cfg, models, variables


@functools.lru_cache(maxsize=None)
def small_kp_detector(variant):
  """Only the keypoint detector of a prior variant (initialising all three costs compile time)."""
  cfg = small_config(variant)
  det = model_lib.build_models(cfg).kp_detector
  prior = {"value": jnp.zeros((1, 18, 2))}
  v = jax.jit(lambda r: det.init(r, images(1), prior=prior))(model_lib._init_key(jax.random.key(0)))
  return cfg, det, v


def jit_apply(module, **static):
  """module.apply under jit (eager Flax applies dispatch op by op and are slow on CPU)."""
  return jax.jit(functools.partial(module.apply, **static))


def images(b=2, s=64, seed=0):
  return jax.random.uniform(jax.random.key(seed), (b, s, s, 3))
