"""Model configurations: the three variants and a reader for the original YAML/JSON layout.

Widths follow the published `vox-256.yaml` of First Order Motion Model (Siarohin et al., NeurIPS 2019) and
the MEGC2021 seed's `my_dataset_train.yaml` (Necolizer/Facial-Prior-Based-FOMM), which reuses them.
Field names are the contract in DESIGN.md ("Model config").
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import ml_collections

from me_fomm.prior.inputs import PRIOR_FRAMES

VARIANTS = ("fomm", "seed", "tip24")
KP_MODES = ("learned", "prior")
PRIOR_MASKS = ("none", "seed", "adaptive")
DTYPES = ("float32", "bfloat16")


def _base() -> ml_collections.ConfigDict:
  """vox-256 widths with 10 learned keypoints (the original FOMM)."""
  cfg = ml_collections.ConfigDict()
  cfg.variant = "fomm"
  cfg.image_size = 256
  cfg.num_channels = 3
  cfg.num_kp = 10
  cfg.estimate_jacobian = True
  cfg.kp_mode = "learned"
  cfg.prior_mask = "none"
  cfg.prior_frames = "per_frame"
  cfg.kp_detector = ml_collections.ConfigDict(
    dict(temperature=0.1, block_expansion=32, max_features=1024, scale_factor=0.25, num_blocks=5)
  )
  cfg.generator = ml_collections.ConfigDict(
    dict(
      block_expansion=64,
      max_features=512,
      num_down_blocks=2,
      num_bottleneck_blocks=6,
      estimate_occlusion_map=True,
      # False = the published generator. True (our option, not in FOMM or the seed): the prediction is
      # occlusion * (source warped by the dense motion) + (1 - occlusion) * decoder output, so visible pixels
      # come straight from the source photo (sharp, same identity) and the decoder paints only occluded ones.
      pixel_skip=False,
      dense_motion=dict(
        block_expansion=64,
        max_features=1024,
        num_blocks=5,
        scale_factor=0.25,
        location_heatmaps=False,
        # Ours, 0 = off: weight of each keypoint's driving Gaussian added to its mask logit
        # (dense_motion.DenseMotionNetwork.mask_prior).
        mask_prior=0.0,
      ),
    )
  )
  cfg.discriminator = ml_collections.ConfigDict(
    dict(scales=[1], block_expansion=32, max_features=512, num_blocks=4, sn=True, use_kp=False)
  )
  cfg.dtype = "float32"
  return cfg


def _apply_overrides(cfg: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  """Sets `overrides` on `cfg`; dotted keys ('generator.block_expansion') and nested dicts both work."""
  for key, value in overrides.items():
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
      if part not in node:
        raise ValueError(
          f"model_config: unknown override {key!r} (no field {part!r}); "
          f"known top-level fields: {sorted(cfg.keys())}"
        )
      node = node[part]
    leaf = parts[-1]
    if leaf not in node:
      raise ValueError(
        f"model_config: unknown override {key!r}; fields here: {sorted(node.keys())}"
      )
    if isinstance(node[leaf], ml_collections.ConfigDict) and isinstance(value, Mapping):
      _apply_overrides(node[leaf], value)
    else:
      node[leaf] = value


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the fields that would otherwise fail deep inside a module; returns `cfg`."""

  def check(name, value, allowed):
    if value not in allowed:
      raise ValueError(f"model config: {name}={value!r} is not one of {allowed}")

  check("variant", cfg.variant, VARIANTS)
  check("kp_mode", cfg.kp_mode, KP_MODES)
  check("prior_mask", cfg.prior_mask, PRIOR_MASKS)
  check("prior_frames", cfg.prior_frames, PRIOR_FRAMES)
  check("dtype", cfg.dtype, DTYPES)
  if cfg.kp_mode == "prior" and cfg.prior_mask == "none":
    raise ValueError(
      "model config: kp_mode='prior' needs prior_mask 'seed' or 'adaptive' (the region mask is "
      "the keypoint detector's 4th input channel)"
    )
  if cfg.kp_mode == "learned" and cfg.prior_mask != "none":
    raise ValueError(f"model config: prior_mask={cfg.prior_mask!r} only applies to kp_mode='prior'")
  if cfg.num_kp < 1 or cfg.num_channels < 1 or cfg.image_size < 8:
    raise ValueError(
      f"model config: num_kp={cfg.num_kp}, num_channels={cfg.num_channels}, "
      f"image_size={cfg.image_size} must be positive (image_size >= 8)"
    )
  if cfg.kp_mode == "prior" and cfg.num_kp != 18:
    raise ValueError(
      f"model config: kp_mode='prior' uses the 18 AU keypoints, got num_kp={cfg.num_kp}"
    )
  for name, sub in (
    ("kp_detector", cfg.kp_detector),
    ("generator.dense_motion", cfg.generator.dense_motion),
  ):
    s = sub.scale_factor
    if not (0 < s <= 1) or abs(1 / s - round(1 / s)) > 1e-6:
      raise ValueError(
        f"model config: {name}.scale_factor={s} must be 1/n for an integer n >= 1 "
        "(the anti-aliased downsampling keeps every n-th pixel)"
      )
  prior = cfg.generator.dense_motion.get("mask_prior", 0.0)  # absent in older checkpoints: off
  if not (math.isfinite(prior) and prior >= 0):
    raise ValueError(
      f"model config: generator.dense_motion.mask_prior={prior} must be a finite weight >= 0 "
      "(0 = off, the published models; the demo uses 10)"
    )
  if not cfg.discriminator.scales:
    raise ValueError("model config: discriminator.scales is empty; the original uses [1]")
  return cfg


def model_config(variant: str = "fomm", **overrides) -> ml_collections.ConfigDict:
  """The model config of a variant, with optional overrides.

  Args:
    variant: 'fomm' (vox-256, 10 learned keypoints), 'seed' (MEGC2021 winner: 18 facial-prior keypoints,
      the seed's region mask, keypoints of the clip's onset frame for both passes) or 'tip24' (per-frame
      landmarks and the learned adaptive weighted prior of the journal follow-up).
    **overrides: field values, dotted names for nested ones, e.g.
      `model_config('fomm', **{'generator.block_expansion': 16})` or `generator=dict(block_expansion=16)`.
  """
  if variant not in VARIANTS:
    raise ValueError(f"model_config: unknown variant {variant!r}; choose one of {VARIANTS}")
  cfg = _base()
  cfg.variant = variant
  if variant == "seed":
    cfg.num_kp = 18
    cfg.kp_mode = "prior"
    cfg.prior_mask = "seed"
    cfg.prior_frames = "onset"
  elif variant == "tip24":
    cfg.num_kp = 18
    cfg.kp_mode = "prior"
    cfg.prior_mask = "adaptive"
    cfg.prior_frames = "per_frame"
  _apply_overrides(cfg, overrides)
  return validate(cfg)


def from_original(
  json_dict: Mapping[str, Any], variant: str | None = None
) -> ml_collections.ConfigDict:
  """Builds a config from an original FOMM / seed YAML or the fixture JSON.

  Reads `common_params`, `kp_detector_params`, `generator_params` (with `dense_motion_params`) and
  `discriminator_params`, either at the top level (fixture JSON) or under `model_params` (training YAML);
  `dataset_params.frame_shape` gives the image size when present.

  Args:
    json_dict: the parsed YAML/JSON.
    variant: 'fomm', 'seed' or 'tip24'; by default the JSON's `which` field, else 'seed' when the file has
      18 keypoints (the seed's layout) and 'fomm' otherwise.
  """
  params = json_dict.get("model_params", json_dict)
  missing = [
    k
    for k in ("common_params", "kp_detector_params", "generator_params", "discriminator_params")
    if k not in params
  ]
  if missing:
    raise ValueError(
      f"from_original: the config lacks {missing}; expected the layout of the original "
      "vox-256.yaml (model_params: common_params, kp_detector_params, ...)"
    )
  common = params["common_params"]
  if variant is None:
    variant = json_dict.get("which") or ("seed" if common.get("num_kp") == 18 else "fomm")
  kp = dict(params["kp_detector_params"])
  gen = dict(params["generator_params"])
  dense = dict(gen.pop("dense_motion_params", None) or {})
  disc = dict(params["discriminator_params"])
  if not dense:
    raise ValueError(
      "from_original: generator_params has no dense_motion_params; every published FOMM "
      "config has one and this port always builds the dense motion network"
    )
  overrides = {
    "num_kp": int(common["num_kp"]),
    "num_channels": int(common["num_channels"]),
    "estimate_jacobian": bool(common.get("estimate_jacobian", True)),
    "kp_detector": {
      k: kp[k]
      for k in ("temperature", "block_expansion", "max_features", "scale_factor", "num_blocks")
      if k in kp
    },
    "generator": {
      k: gen[k]
      for k in (
        "block_expansion",
        "max_features",
        "num_down_blocks",
        "num_bottleneck_blocks",
        "estimate_occlusion_map",
      )
      if k in gen
    },
    "generator.dense_motion": {
      k: dense[k]
      for k in ("block_expansion", "max_features", "num_blocks", "scale_factor")
      if k in dense
    },
    "discriminator": {
      k: disc[k]
      for k in ("block_expansion", "max_features", "num_blocks", "sn", "use_kp")
      if k in disc
    },
  }
  if "scales" in disc:
    overrides["discriminator.scales"] = list(disc["scales"])
  if "sn" not in disc:
    overrides["discriminator.sn"] = False  # the original Discriminator's default
  frame_shape = json_dict.get("dataset_params", {}).get("frame_shape")
  if frame_shape:
    overrides["image_size"] = int(frame_shape[0])
  return model_config(variant, **overrides)


def resolve_config(spec: str, variant: str | None = None) -> ml_collections.ConfigDict:
  """A model config from a variant name ('fomm', 'seed', 'tip24') or a path to an original YAML/JSON."""
  import json
  import os

  if spec in VARIANTS:
    return model_config(spec)
  if not os.path.exists(spec):
    raise ValueError(
      f"model config {spec!r} is neither a variant {VARIANTS} nor an existing YAML/JSON file"
    )
  with open(spec) as f:
    text = f.read()
  if spec.endswith((".yaml", ".yml")):
    import yaml

    data = yaml.safe_load(text)
  else:
    data = json.loads(text)
  if not isinstance(data, Mapping):
    raise ValueError(f"model config file {spec!r} does not hold a mapping")
  return from_original(data, variant=variant)
