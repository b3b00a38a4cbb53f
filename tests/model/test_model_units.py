"""Unit behaviour of the model package: configs, geometry, layers, motion transfer, TPS, errors, dtypes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm import model as model_lib
from me_fomm.model import config as config_lib
from me_fomm.model import discriminator, geometry, layers, motion_transfer, tps


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
  v = jax.jit(lambda r: det.init(r, _images(1), prior=prior))(
    model_lib._init_key(jax.random.key(0))
  )
  return cfg, det, v


def jit_apply(module, **static):
  """module.apply under jit (eager Flax applies dispatch op by op and are slow on CPU)."""
  return jax.jit(functools.partial(module.apply, **static))


def _images(b=2, s=64, seed=0):
  return jax.random.uniform(jax.random.key(seed), (b, s, s, 3))


# ---------------------------------------------------------------------------------------------- configs


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
    block_expansion=64, max_features=1024, num_blocks=5, scale_factor=0.25, location_heatmaps=False
  )
  # Our options are off in every published variant.
  assert not any(
    c.generator.pixel_skip or c.generator.dense_motion.location_heatmaps for c in (fomm, seed, tip)
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


# --------------------------------------------------------------------------------------------- geometry


def _grid_sample_reference(img, grid, padding):
  """Direct per-point transcription of torch's bilinear grid_sample (align_corners=False), float64."""
  n, h, w, c = img.shape
  out = np.zeros(grid.shape[:-1] + (c,))

  def reflect(x, size):
    lo, span = -0.5, size
    x = abs(x - lo)
    extra, flips = x % span, np.floor(x / span)
    x = extra + lo if flips % 2 == 0 else span - extra + lo
    return min(max(x, 0), size - 1)

  for b in range(n):
    for idx in np.ndindex(grid.shape[1:-1]):
      gx, gy = grid[(b,) + idx]
      x, y = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
      if padding == "reflection":
        x, y = reflect(x, w), reflect(y, h)
      x0, y0 = int(np.floor(x)), int(np.floor(y))
      val = np.zeros(c)
      for xi, yi, wt in (
        (x0, y0, (x0 + 1 - x) * (y0 + 1 - y)),
        (x0 + 1, y0, (x - x0) * (y0 + 1 - y)),
        (x0, y0 + 1, (x0 + 1 - x) * (y - y0)),
        (x0 + 1, y0 + 1, (x - x0) * (y - y0)),
      ):
        if 0 <= xi < w and 0 <= yi < h:
          val += wt * img[b, yi, xi]
      out[(b,) + idx] = val
  return out


@pytest.mark.parametrize("padding", ["zeros", "reflection"])
def test_grid_sample_matches_direct_transcription(padding):
  rng = np.random.default_rng(0)
  img = rng.uniform(size=(2, 5, 7, 3)).astype(np.float32)
  grid = rng.uniform(-1.6, 1.6, size=(2, 4, 6, 2)).astype(np.float32)  # includes points outside
  got = geometry.grid_sample(jnp.asarray(img), jnp.asarray(grid), padding_mode=padding)
  np.testing.assert_allclose(got, _grid_sample_reference(img, grid, padding), atol=1e-5)


def test_grid_sample_pixel_centres_and_gradient():
  img = jax.random.uniform(jax.random.key(1), (1, 6, 8, 2))
  ys, xs = np.meshgrid(
    (2 * np.arange(6) + 1) / 6 - 1, (2 * np.arange(8) + 1) / 8 - 1, indexing="ij"
  )
  centres = jnp.asarray(np.stack([xs, ys], -1)[None], jnp.float32)
  np.testing.assert_allclose(geometry.grid_sample(img, centres), img, atol=1e-6)

  def f(g):
    return jnp.sum(geometry.grid_sample(img, g) ** 2)

  g0 = centres + 0.03
  grad = jax.grad(f)(g0)
  eps = 1e-3
  d = jnp.zeros_like(g0).at[0, 2, 3, 0].set(eps)
  numeric = (f(g0 + d) - f(g0 - d)) / (2 * eps)
  np.testing.assert_allclose(grad[0, 2, 3, 0], numeric, rtol=2e-2, atol=1e-4)


def test_resize_bilinear_equals_half_pixel_resize():
  x = jax.random.normal(jax.random.key(2), (2, 8, 8, 2))
  got = geometry.resize_bilinear(x, (32, 32))
  want = jax.image.resize(x, (2, 32, 32, 2), "bilinear")  # half-pixel centres = align_corners=False
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_inverse_and_matmul_2x2():
  m = np.random.default_rng(1).normal(size=(3, 4, 2, 2)).astype(np.float32) + 2 * np.eye(
    2, dtype=np.float32
  )
  np.testing.assert_allclose(
    geometry.inverse_2x2(jnp.asarray(m)), np.linalg.inv(m), rtol=1e-4, atol=1e-5
  )
  np.testing.assert_allclose(
    geometry.matmul_2x2(jnp.asarray(m), jnp.asarray(m)), m @ m, rtol=1e-5, atol=1e-5
  )


def test_kp2gaussian_peaks_at_keypoint():
  heat = geometry.kp2gaussian(jnp.asarray([[[-1.0, -1.0], [1.0, 1.0]]]), (9, 9))
  assert heat.shape == (1, 9, 9, 2)
  assert heat[0, 0, 0, 0] == 1.0 and heat[0, 8, 8, 1] == 1.0 and heat[0, 8, 8, 0] < 1e-6


# ------------------------------------------------------------------------------------- motion transfer


def _kp(rng, b=1, k=5):
  return {
    "value": rng.uniform(-0.8, 0.8, (b, k, 2)).astype(np.float32),
    "jacobian": (np.eye(2) + 0.2 * rng.normal(size=(b, k, 2, 2))).astype(np.float32),
  }


def test_normalize_kp_magnify():
  rng = np.random.default_rng(3)
  src, drv, ini = _kp(rng), _kp(rng), _kp(rng)
  one = motion_transfer.normalize_kp(src, drv, ini, magnify=1.0)
  # alpha = 1: the original formulas.
  np.testing.assert_allclose(one["value"], src["value"] + drv["value"] - ini["value"], atol=1e-6)
  jd = drv["jacobian"] @ np.linalg.inv(ini["jacobian"])
  np.testing.assert_allclose(one["jacobian"], jd @ src["jacobian"], atol=1e-5)
  two = motion_transfer.normalize_kp(src, drv, ini, magnify=2.0)
  np.testing.assert_allclose(
    two["value"] - src["value"], 2 * (one["value"] - src["value"]), atol=1e-6
  )
  eye = np.eye(2)
  np.testing.assert_allclose(two["jacobian"], (eye + 2 * (jd - eye)) @ src["jacobian"], atol=1e-5)
  # No relative movement: the driving keypoints as they are.
  plain = motion_transfer.normalize_kp(src, drv, ini, use_relative_movement=False)
  np.testing.assert_array_equal(plain["value"], drv["value"])


def test_convex_hull_area():
  square = np.array(
    [[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0]], float
  )  # interior + edge points
  assert motion_transfer.convex_hull_area(square) == pytest.approx(4.0)
  assert motion_transfer.convex_hull_area([[0, 0], [1, 1], [2, 2]]) == 0.0
  from scipy.spatial import ConvexHull

  pts = np.random.default_rng(4).normal(size=(18, 2))
  assert motion_transfer.convex_hull_area(pts) == pytest.approx(ConvexHull(pts).volume, rel=1e-12)


def test_adapt_scale_under_jit_needs_precomputed_scale():
  rng = np.random.default_rng(5)
  src, drv, ini = _kp(rng), _kp(rng), _kp(rng)
  with pytest.raises(ValueError, match="movement_scale"):
    jax.jit(lambda a, b, c: motion_transfer.normalize_kp(a, b, c, adapt_movement_scale=True))(
      src, drv, ini
    )


# ------------------------------------------------------------------------------------------------- TPS


def test_tps_sample_and_jacobian_by_finite_differences():
  t = jax.jit(
    functools.partial(tps.sample_tps, batch=2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5)
  )(jax.random.key(0))
  assert t["theta"].shape == (2, 2, 3) and t["control_points"].shape == (1, 5, 5, 2)
  assert t["control_params"].shape == (2, 1, 25)
  pts = jnp.asarray(np.random.default_rng(1).uniform(-0.9, 0.9, (2, 3, 2)), jnp.float32)
  jac = jax.jit(tps.jacobian)(t, pts)
  eps = 1e-3
  warp = jax.jit(tps.warp_coordinates)
  for axis in range(2):
    d = jnp.zeros_like(pts).at[..., axis].set(eps)
    numeric = (warp(t, pts + d) - warp(t, pts - d)) / (2 * eps)
    np.testing.assert_allclose(jac[..., axis], numeric, atol=2e-3)
  affine = tps.sample_tps(jax.random.key(2), 2, sigma_affine=0.1)
  assert "control_points" not in affine
  np.testing.assert_allclose(
    jax.jit(tps.jacobian)(affine, pts), np.repeat(affine["theta"][:, None, :, :2], 3, 1), atol=1e-6
  )
  frame = jax.jit(tps.transform_frame)(t, _images(2, 16))
  assert frame.shape == (2, 16, 16, 3) and bool(jnp.all(jnp.isfinite(frame)))


# ------------------------------------------------------------------------------------ layers and modules


def test_batchnorm_matches_torch_conventions():
  x = jax.random.normal(jax.random.key(3), (4, 3, 3, 2)) * 3 + 1
  bn = layers.BatchNorm2d()
  v = bn.init(jax.random.key(0), x, train=False)
  y, upd = bn.apply(v, x, train=True, mutable=["batch_stats"])
  xs = np.asarray(x).reshape(-1, 2)
  np.testing.assert_allclose(
    y.reshape(-1, 2), (xs - xs.mean(0)) / np.sqrt(xs.var(0) + 1e-5), atol=1e-5
  )
  np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.1 * xs.mean(0), rtol=1e-5)
  np.testing.assert_allclose(upd["batch_stats"]["var"], 0.9 + 0.1 * xs.var(0, ddof=1), rtol=1e-5)


def test_spectral_norm_power_iteration_and_eval():
  x = jax.random.normal(jax.random.key(4), (1, 6, 6, 3))
  sn = discriminator.SpectralConv2d(5, 3)
  v = sn.init(jax.random.key(0), x, train=False)
  kernel = np.asarray(v["params"]["kernel"])
  true_sigma = np.linalg.svd(np.transpose(kernel, (3, 2, 0, 1)).reshape(5, -1), compute_uv=False)[0]
  state = v
  step = jax.jit(lambda st: sn.apply(st, x, train=True, mutable=["batch_stats"]))
  for _ in range(30):
    _, upd = step(state)
    state = {"params": v["params"], "batch_stats": upd["batch_stats"]}
  u, vv = state["batch_stats"]["u"], state["batch_stats"]["v"]
  w = np.transpose(kernel, (3, 2, 0, 1)).reshape(5, -1)
  assert float(u @ w @ vv) == pytest.approx(true_sigma, rel=1e-4)
  # Eval: no power iteration, the stored u, v are used as they are.
  y_eval, upd = sn.apply(state, x, train=False, mutable=["batch_stats"])
  np.testing.assert_array_equal(upd["batch_stats"]["u"], u)
  ref = (
    jax.lax.conv_general_dilated(
      x, kernel / float(u @ w @ vv), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    + v["params"]["bias"]
  )
  np.testing.assert_allclose(y_eval, ref, atol=1e-5)


def test_fresh_keypoint_detector_has_identity_jacobians():
  cfg, models, variables = small_setup()
  kp = jit_apply(models.kp_detector)(variables["kp_detector"], _images())
  assert kp["value"].shape == (2, 4, 2) and kp["jacobian"].shape == (2, 4, 2, 2)
  np.testing.assert_allclose(kp["jacobian"], np.broadcast_to(np.eye(2), (2, 4, 2, 2)), atol=1e-6)
  assert bool(jnp.all(jnp.abs(kp["value"]) <= 1))


def test_forward_shapes_jit_grad_vmap():
  cfg, models, v = small_setup()
  imgs = _images()
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


def test_bfloat16_forward_close_to_float32():
  cfg32, models32, v = small_setup("fomm", "float32")
  cfg16 = small_config("fomm", dtype="bfloat16")
  models16 = model_lib.build_models(cfg16)
  imgs = _images()
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
  kp = jit_apply(det)(v, _images(), prior=prior)
  np.testing.assert_array_equal(kp["value"], prior["value"])  # values are the AU keypoints
  assert kp["jacobian"].shape == (2, 18, 2, 2)
  assert ("prior" in v["params"]) == (variant == "tip24")


# ---------------------------------------------------------------------------------------- bad input


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
    models.kp_detector.apply(v["kp_detector"], _images(), prior={"value": jnp.zeros((2, 4, 2))})
  with pytest.raises(ValueError, match="not divisible"):
    models.kp_detector.apply(v["kp_detector"], _images(1, 48))
  with pytest.raises(ValueError, match="lacks 'prediction_1'"):
    models.discriminator.apply(v["discriminator"], {"prediction_0.5": _images(1, 32)})
  _, det, v_s = small_kp_detector("seed")
  with pytest.raises(ValueError, match="pass prior"):
    det.apply(v_s, _images())
  with pytest.raises(ValueError, match=r"\(2, 18, 2\)"):
    det.apply(v_s, _images(), prior={"value": jnp.zeros((2, 10, 2))})
  with pytest.raises(ValueError, match="padding_mode"):
    geometry.grid_sample(_images(1, 8), jnp.zeros((1, 2, 2)), padding_mode="border")


def test_discriminator_with_keypoint_heatmaps():
  disc = discriminator.MultiScaleDiscriminator(
    scales=(1, 0.5), block_expansion=4, max_features=16, use_kp=True, num_kp=4
  )
  kp = {"value": jnp.zeros((1, 4, 2))}
  pyr = model_lib.image_pyramid(_images(1, 64), (1, 0.5))
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


def test_batchnorm_statistics_are_global_under_sharding():
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  devices = np.array(jax.devices())
  if devices.size < 2:
    pytest.skip("needs several (simulated) devices")
  x = jax.random.normal(jax.random.key(5), (devices.size * 2, 4, 4, 3)) * 2 + 1
  bn = layers.BatchNorm2d()
  v = bn.init(jax.random.key(0), x, train=False)
  step = jax.jit(lambda vv, xx: bn.apply(vv, xx, train=True, mutable=["batch_stats"]))
  y_one, s_one = step(v, x)
  sharded = jax.device_put(x, NamedSharding(Mesh(devices, ("data",)), P("data")))
  y_sh, s_sh = step(v, sharded)
  np.testing.assert_allclose(y_sh, y_one, atol=1e-6)
  np.testing.assert_allclose(s_sh["batch_stats"]["var"], s_one["batch_stats"]["var"], rtol=1e-6)


def test_warp_exact_identity_and_shift_unlike_fomm_deform_input():
  # The coordinate grid is the exact identity for warp_exact; FOMM's deform_input shrinks the frame by
  # 1/(w - 1) about the centre (the reason pixel_skip uses warp_exact).
  img = _images(2, 64)
  grid = jnp.broadcast_to(geometry.make_coordinate_grid((16, 16)), (2, 16, 16, 2))
  np.testing.assert_allclose(geometry.warp_exact(img, grid), img, atol=1e-4)
  fomm = geometry.grid_sample(img, geometry.resize_bilinear(grid, (64, 64)))
  assert float(jnp.abs(fomm - img).mean()) > 0.05
  # Reading the source one pixel to the right everywhere = the image shifted left by one pixel.
  shifted = geometry.warp_exact(img, grid + jnp.array([2.0 / 63, 0.0]))
  np.testing.assert_allclose(shifted[:, :, :-1], img[:, :, 1:], atol=1e-4)
  np.testing.assert_allclose(
    geometry.px_to_grid(jnp.array([0.0, 31.5, 63.0]), 64), [-1.0, 0.0, 1.0], atol=1e-6
  )


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
  imgs = _images(1)
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
