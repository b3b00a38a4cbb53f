"""The three modules on small configs: shapes, jit/grad/vmap, dtypes, prior variants, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small_models import images, jit_apply, small_config, small_kp_detector, small_setup

from me_fomm import model as model_lib
from me_fomm.model import config as config_lib
from me_fomm.model import discriminator, geometry


def test_fresh_keypoint_detector_has_identity_jacobians():
  cfg, models, variables = small_setup()
  kp = jit_apply(models.kp_detector)(variables["kp_detector"], images())
  assert kp["value"].shape == (2, 4, 2) and kp["jacobian"].shape == (2, 4, 2, 2)
  np.testing.assert_allclose(kp["jacobian"], np.broadcast_to(np.eye(2), (2, 4, 2, 2)), atol=1e-6)
  assert bool(jnp.all(jnp.abs(kp["value"]) <= 1))


def test_forward_shapes_jit_grad_vmap():
  cfg, models, v = small_setup()
  imgs = images()
  kp = jit_apply(models.kp_detector)(v["kp_detector"], imgs)
  ks = jax.tree_util.tree_map(lambda a: a[:1], kp)
  kd = jax.tree_util.tree_map(lambda a: a[1:], kp)
  out = jit_apply(models.generator)(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd)
  shapes = {k: a.shape for k, a in out.items()}
  assert shapes == {
    "prediction": (1, 64, 64, 3),
    "deformed": (1, 64, 64, 3),
    "mask": (1, 16, 16, 5),
    "sparse_deformed": (1, 5, 16, 16, 3),
    "occlusion_map": (1, 16, 16, 1),
    "deformation": (1, 16, 16, 2),
  }

  def loss(params):
    (o, _) = models.generator.apply(
      {"params": params, "batch_stats": v["generator"]["batch_stats"]},
      imgs[:1],
      kp_source=ks,
      kp_driving=kd,
      train=True,
      mutable=["batch_stats"],
    )
    return jnp.mean(jnp.abs(o["prediction"] - imgs[1:]))

  grads = jax.jit(jax.grad(loss))(v["generator"]["params"])
  leaves = jax.tree_util.tree_leaves(grads)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves) and any(
    float(jnp.abs(g).max()) > 0 for g in leaves
  )
  per_frame = jax.jit(
    jax.vmap(lambda x: models.kp_detector.apply(v["kp_detector"], x[None])["value"][0])
  )(imgs)
  np.testing.assert_allclose(per_frame, kp["value"], atol=1e-5)
  pyr = model_lib.image_pyramid(out["prediction"], cfg.discriminator.scales)
  d = jit_apply(models.discriminator)(v["discriminator"], pyr)
  assert d["prediction_map_1"].shape == (1, 2, 2, 1) and len(d["feature_maps_1"]) == 4


def test_generator_reuses_an_encoded_source():
  cfg, models, v = small_setup()
  imgs = images(3)
  kp = jit_apply(models.kp_detector)(v["kp_detector"], imgs)
  ks = jax.tree_util.tree_map(lambda a: a[:1], kp)
  kd = jax.tree_util.tree_map(lambda a: a[1:], kp)
  apply = jit_apply(models.generator)
  encoded = apply(v["generator"], imgs[:1])["encoded"]
  # The encoder's output: two down blocks of the small generator's 64 px input.
  assert encoded.shape[0] == 1 and encoded.shape[1:3] == (16, 16)
  plain = apply(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd)
  reused = apply(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd, encoded=encoded)
  for name in plain:
    np.testing.assert_array_equal(reused[name], plain[name], err_msg=name)
  # Features of another image change the frames: the encoding is what the decoder reads.
  other = apply(v["generator"], imgs[1:2])["encoded"]
  moved = apply(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd, encoded=other)
  assert float(jnp.abs(moved["prediction"] - plain["prediction"]).max()) > 1e-6
  with pytest.raises(ValueError, match="1 encoded"):
    models.generator.apply(v["generator"], imgs[1:], kp_source=kd, kp_driving=kd, encoded=encoded)


def test_bfloat16_forward_close_to_float32():
  cfg32, models32, v = small_setup("fomm", "float32")
  cfg16 = small_config("fomm", dtype="bfloat16")
  models16 = model_lib.build_models(cfg16)
  imgs = images()
  kp32 = jit_apply(models32.kp_detector)(v["kp_detector"], imgs)
  kp16 = jit_apply(models16.kp_detector)(v["kp_detector"], imgs)
  assert kp16["value"].dtype == jnp.float32  # outputs that feed losses stay float32
  assert float(jnp.abs(kp16["value"] - kp32["value"]).max()) < 5e-2
  ks = jax.tree_util.tree_map(lambda a: a[:1], kp32)
  kd = jax.tree_util.tree_map(lambda a: a[1:], kp32)
  p32 = jit_apply(models32.generator)(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd)[
    "prediction"
  ]
  p16 = jit_apply(models16.generator)(v["generator"], imgs[:1], kp_source=ks, kp_driving=kd)[
    "prediction"
  ]
  assert p16.dtype == jnp.float32 and float(jnp.abs(p16 - p32).max()) < 5e-2
  params16 = jax.tree_util.tree_leaves(
    model_lib.abstract_variables(models16, cfg16)["generator"]["params"]
  )
  assert all(p.dtype == jnp.float32 for p in params16)  # parameters stay float32


@pytest.mark.parametrize("variant", ["seed", "tip24"])
def test_prior_variants_run(variant):
  cfg, det, v = small_kp_detector(variant)
  px = np.tile(np.linspace(20, 44, 18)[None, :, None], (2, 1, 2)).astype(np.float32)
  prior = {"value": jnp.asarray(px) * 2 / 64 - 1}
  kp = jit_apply(det)(v, images(), prior=prior)
  np.testing.assert_array_equal(kp["value"], prior["value"])  # values are the AU keypoints
  assert kp["jacobian"].shape == (2, 18, 2, 2)
  assert ("prior" in v["params"]) == (variant == "tip24")


def test_check_inputs_errors():
  cfg = small_config()
  good = np.zeros((1, 64, 64, 3), np.float32)
  model_lib.check_inputs(cfg, image=good)
  cases = [
    (dict(image=np.zeros((1, 64, 64, 3), np.uint8)), "uint8"),
    (dict(image=np.zeros((1, 3, 64, 64), np.float32)), "NCHW"),
    (dict(image=np.full((1, 64, 64, 3), np.nan, np.float32)), "non-finite"),
    (dict(image=np.full((1, 64, 64, 3), 255.0, np.float32)), r"\[0, 1\]"),
    (dict(image=np.zeros((1, 60, 60, 3), np.float32)), "multiple of"),
    (dict(kp={"value": np.zeros((1, 68, 2))}), "landmarks_to_au"),
    (dict(kp={"value": np.zeros((1, 4, 2)), "jacobian": np.zeros((1, 4, 2))}), "jacobian"),
    (dict(kp={"value": np.full((1, 4, 2), np.inf)}), "non-finite"),
    (dict(image=good, kp={"value": np.zeros((2, 4, 2))}), "batch sizes"),
  ]
  for kwargs, message in cases:
    with pytest.raises(ValueError, match=message):
      model_lib.check_inputs(cfg, where="test", **kwargs)


def test_module_errors():
  cfg, models, v = small_setup()
  with pytest.raises(ValueError, match="takes no prior"):
    models.kp_detector.apply(v["kp_detector"], images(), prior={"value": jnp.zeros((2, 4, 2))})
  with pytest.raises(ValueError, match="not divisible"):
    models.kp_detector.apply(v["kp_detector"], images(1, 48))
  with pytest.raises(ValueError, match="lacks 'prediction_1'"):
    models.discriminator.apply(v["discriminator"], {"prediction_0.5": images(1, 32)})
  _, det, v_s = small_kp_detector("seed")
  with pytest.raises(ValueError, match="pass prior"):
    det.apply(v_s, images())
  with pytest.raises(ValueError, match=r"\(2, 18, 2\)"):
    det.apply(v_s, images(), prior={"value": jnp.zeros((2, 10, 2))})
  with pytest.raises(ValueError, match="padding_mode"):
    geometry.grid_sample(images(1, 8), jnp.zeros((1, 2, 2)), padding_mode="border")


def test_discriminator_with_keypoint_heatmaps():
  disc = discriminator.MultiScaleDiscriminator(
    scales=(1, 0.5), block_expansion=4, max_features=16, use_kp=True, num_kp=4
  )
  kp = {"value": jnp.zeros((1, 4, 2))}
  pyr = model_lib.image_pyramid(images(1, 64), (1, 0.5))
  v = jax.jit(lambda r: disc.init(r, pyr, kp=kp))(model_lib._init_key(jax.random.key(0)))
  # Input channels = 3 image + 4 keypoint heatmaps.
  assert v["params"]["discs_1"]["down_blocks_0"]["conv"]["kernel"].shape == (4, 4, 7, 8)
  out = jax.jit(disc.apply)(v, pyr, kp)
  assert sorted(out) == [
    "feature_maps_0.5",
    "feature_maps_1",
    "prediction_map_0.5",
    "prediction_map_1",
  ]
  with pytest.raises(ValueError, match="use_kp"):
    disc.apply(v, pyr)


def test_generator_pixel_skip_blends_the_exactly_warped_source():
  cfg = small_config(
    "fomm", **{"generator.pixel_skip": True, "generator.dense_motion.location_heatmaps": True}
  )
  models = model_lib.build_models(cfg)
  v = model_lib.init_variables(models, cfg, jax.random.key(0))
  # location_heatmaps: per candidate motion [difference heatmap, location heatmap, warped source] = C + 2.
  in_channels = {
    x.shape[-2]
    for x in jax.tree_util.tree_leaves(
      v["generator"]["params"]["dense_motion_network"]["hourglass"]
    )
    if x.ndim == 4
  }
  assert (cfg.num_kp + 1) * (3 + 2) in in_channels
  imgs = images(1)
  kp = jit_apply(models.kp_detector)(v["kp_detector"], imgs)
  out = jit_apply(models.generator)(v["generator"], imgs, kp_source=kp, kp_driving=kp)
  # Same keypoints on both sides: every sparse motion is the identity, so the warped source is the source.
  np.testing.assert_allclose(out["warped_source"], imgs, atol=1e-4)
  occ = geometry.resize_bilinear(out["occlusion_map"], (64, 64))
  np.testing.assert_allclose(
    out["prediction"], occ * out["warped_source"] + (1 - occ) * out["decoded"], atol=1e-6
  )
  # Off by default: the published generator's outputs only.
  assert not config_lib.model_config("fomm").generator.pixel_skip
  with pytest.raises(ValueError, match="estimate_occlusion_map"):
    bad = small_config(
      "fomm", **{"generator.pixel_skip": True, "generator.estimate_occlusion_map": False}
    )
    m = model_lib.build_models(bad)
    model_lib.init_variables(m, bad, jax.random.key(0))


def test_mask_prior_gives_each_keypoint_the_pixels_around_it():
  from me_fomm.model import dense_motion

  net = dense_motion.DenseMotionNetwork(
    num_kp=3, block_expansion=4, max_features=16, num_blocks=2, scale_factor=0.5, mask_prior=40.0
  )
  src = images(1)
  kp_s = {"value": jnp.asarray([[[-0.5, -0.5], [0.5, -0.4], [0.0, 0.5]]], jnp.float32)}
  kp_d = {"value": kp_s["value"] + 0.02}
  v = net.init(jax.random.key(0), src, kp_d, kp_s)
  out = net.apply(v, src, kp_d, kp_s)
  mask = np.asarray(out["mask"][0])  # (h, w, K + 1), background first
  h, w = mask.shape[:2]
  for k, (x, y) in enumerate(np.asarray(kp_d["value"][0])):
    col, row = round((x + 1) / 2 * (w - 1)), round((y + 1) / 2 * (h - 1))
    assert mask[row, col].argmax() == k + 1 and mask[row, col, k + 1] > 0.99
  # Far from every keypoint the learned logits decide, as without the prior.
  off = net.clone(mask_prior=0.0).apply(v, src, kp_d, kp_s)
  np.testing.assert_allclose(out["mask"][0, -1, 0], off["mask"][0, -1, 0], atol=1e-3)
