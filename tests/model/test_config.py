"""Model configs: the variants, overrides, errors, the original YAML layout, parameter counts."""

from __future__ import annotations

import pytest

from me_fomm import model as model_lib
from me_fomm.model import config as config_lib


def test_full_size_fomm_param_counts_match_the_original():
  cfg = config_lib.model_config("fomm")
  shapes = model_lib.abstract_variables(model_lib.build_models(cfg), cfg)
  counts = {k: model_lib.count_params(v) for k, v in shapes.items()}
  assert counts == {"kp_detector": 14_215_368, "generator": 45_575_391, "discriminator": 2_758_849}


def test_variants_fields():
  fomm, seed, tip = (config_lib.model_config(v) for v in ("fomm", "seed", "tip24"))
  assert (fomm.num_kp, fomm.kp_mode, fomm.prior_mask) == (10, "learned", "none")
  assert (seed.num_kp, seed.kp_mode, seed.prior_mask, seed.prior_frames) == (
    18,
    "prior",
    "seed",
    "onset",
  )
  assert (tip.num_kp, tip.kp_mode, tip.prior_mask, tip.prior_frames) == (
    18,
    "prior",
    "adaptive",
    "per_frame",
  )
  assert fomm.generator.dense_motion.to_dict() == dict(
    block_expansion=64,
    max_features=1024,
    num_blocks=5,
    scale_factor=0.25,
    location_heatmaps=False,
    mask_prior=0.0,
  )
  # Our options are off in every published variant.
  assert not any(
    c.generator.pixel_skip
    or c.generator.dense_motion.location_heatmaps
    or c.generator.dense_motion.mask_prior
    for c in (fomm, seed, tip)
  )
  assert (fomm.discriminator.scales, fomm.discriminator.sn, fomm.dtype) == ([1], True, "float32")


def test_overrides_and_errors():
  cfg = config_lib.model_config(
    "fomm", **{"generator.block_expansion": 16}, discriminator={"sn": False}
  )
  assert cfg.generator.block_expansion == 16 and cfg.discriminator.sn is False
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.model_config("vox")
  with pytest.raises(ValueError, match="unknown override"):
    config_lib.model_config("fomm", **{"generator.width": 3})
  with pytest.raises(ValueError, match="scale_factor"):
    config_lib.model_config("fomm", **{"kp_detector.scale_factor": 0.3})
  with pytest.raises(ValueError, match="18 AU keypoints"):
    config_lib.model_config("seed", num_kp=10)
  for bad in (-1.0, float("nan")):
    with pytest.raises(ValueError, match="mask_prior"):
      config_lib.model_config("tip24", **{"generator.dense_motion.mask_prior": bad})
  with pytest.raises(ValueError, match="dtype"):
    config_lib.model_config("fomm", dtype="float16")


def test_from_original_reads_yaml_layout(tmp_path):
  yaml_text = """
dataset_params:
  frame_shape: [128, 128, 3]
model_params:
  common_params: {num_kp: 18, num_channels: 3, estimate_jacobian: True}
  kp_detector_params: {temperature: 0.1, block_expansion: 32, max_features: 1024, scale_factor: 0.25,
                       num_blocks: 5}
  generator_params:
    block_expansion: 64
    max_features: 512
    num_down_blocks: 2
    num_bottleneck_blocks: 6
    estimate_occlusion_map: True
    dense_motion_params: {block_expansion: 64, max_features: 1024, num_blocks: 5, scale_factor: 0.25}
  discriminator_params: {scales: [1], block_expansion: 32, max_features: 512, num_blocks: 4}
"""
  path = tmp_path / "seed.yaml"
  path.write_text(yaml_text)
  cfg = config_lib.resolve_config(str(path))
  assert cfg.variant == "seed" and cfg.image_size == 128 and cfg.num_kp == 18
  assert cfg.discriminator.sn is False  # absent in the YAML: the original Discriminator's default
  with pytest.raises(ValueError, match="lacks"):
    config_lib.from_original({"model_params": {"common_params": {}}})
  with pytest.raises(ValueError, match="neither a variant"):
    config_lib.resolve_config(str(tmp_path / "missing.yaml"))
