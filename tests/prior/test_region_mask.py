"""Region-focusing masks: the seed's mask against the fixture, and tip24's adaptive weighted prior."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.prior import region_mask as rm

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "reference" / "seed_small_s0.npz"


@pytest.fixture(scope="module")
def ref():
  return np.load(FIXTURE)


def test_seed_mask_matches_fixture_under_jit(ref):
  mask = jax.jit(rm.seed_region_mask, static_argnums=(1, 2, 3))(
    ref["au_keypoints_px"], 256, 64, 0.75
  )
  assert mask.shape == (2, 64, 64, 1) and mask.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(mask)[..., 0], ref["region_mask"][:, 0], atol=1e-5)


def _numpy_seed_mask(kp_px, image_size, grid, sigma):
  """Direct transcription of the seed's formula for one face (float64), for a second grid size."""
  kp = kp_px * grid / image_size
  rows, cols = np.meshgrid(np.arange(1, grid + 1), np.arange(1, grid + 1), indexing="ij")
  total = np.zeros((grid, grid))
  for x, y in kp:
    h = np.exp(-np.sqrt(np.abs(rows - y) + np.abs(cols - x)) / (2 * sigma**2))
    h = h / h.max()
    total += h * (h >= h.mean())
  return total / total.max()


def test_seed_mask_other_grid_and_batch_independence(ref):
  kp = ref["au_keypoints_px"]
  mask = np.asarray(rm.seed_region_mask(kp, image_size=256, grid=32, sigma=1.0))
  for b in range(2):
    np.testing.assert_allclose(mask[b, ..., 0], _numpy_seed_mask(kp[b], 256, 32, 1.0), atol=1e-5)
  single = np.asarray(rm.seed_region_mask(kp[1:], image_size=256, grid=32, sigma=1.0))
  np.testing.assert_allclose(single[0], mask[1], atol=1e-6)


def test_seed_mask_far_outside_keypoints_stay_finite():
  kp = np.full((1, 18, 2), 1e7, np.float32)
  mask = np.asarray(rm.seed_region_mask(kp))
  assert np.all(np.isfinite(mask)) and mask.max() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(18, 2), (1, 17, 2), (1, 18, 3)])
def test_seed_mask_wrong_shape_raises(shape):
  with pytest.raises(ValueError, match=r"\(batch, 18, 2\)"):
    rm.seed_region_mask(np.zeros(shape, np.float32))


def test_seed_mask_bad_values_raise():
  kp = np.zeros((1, 18, 2), np.float32)
  kp[0, 0, 0] = np.inf
  with pytest.raises(ValueError, match="NaN or inf"):
    rm.seed_region_mask(kp)
  with pytest.raises(ValueError, match="grid"):
    rm.seed_region_mask(np.zeros((1, 18, 2), np.float32), grid=0)


def test_adaptive_prior_init_apply_jit_grad(ref):
  kp = jnp.asarray(ref["au_keypoints_px"])
  model = rm.AdaptiveWeightedPrior(grid=16)
  variables = model.init(jax.random.key(0), kp)
  params = variables["params"]
  assert params["learn"]["kernel"].shape == (3, 3, 18, 9)
  assert params["learn1"]["kernel"].shape == (3, 3, 9, 1)
  assert params["learn"]["bias"].shape == (9,)
  out = jax.jit(model.apply)(variables, kp)
  assert out.shape == (2, 16, 16, 1) and np.all(np.isfinite(np.asarray(out)))
  # The output depends on where the keypoints are (each face gives its own map).
  assert not np.allclose(np.asarray(out[0]), np.asarray(out[1]))

  def loss(p):
    return jnp.mean(model.apply({"params": p}, kp) ** 2)

  grads = jax.jit(jax.grad(loss))(params)
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert float(jnp.abs(grads["learn"]["kernel"]).sum()) > 0
  assert float(jnp.abs(grads["learn1"]["bias"]).sum()) > 0


def test_adaptive_prior_is_two_linear_convs_over_euclidean_maps(ref):
  """With identity-like weights the module reduces to its documented formula: a check of the heatmaps."""
  kp = ref["au_keypoints_px"][:1]
  model = rm.AdaptiveWeightedPrior(grid=16)
  variables = model.init(jax.random.key(1), kp)
  p = jax.tree.map(np.zeros_like, variables["params"])
  p["learn"]["kernel"][1, 1, :, 0] = 1.0  # centre tap: channel 0 = sum of the 18 maps
  p["learn1"]["kernel"][1, 1, 0, 0] = 1.0
  out = np.asarray(model.apply({"params": p}, kp))[0, ..., 0]
  rows, cols = np.meshgrid(np.arange(1, 17), np.arange(1, 17), indexing="ij")
  expected = np.zeros((16, 16))
  for x, y in kp[0] * 16 / 256:
    h = np.exp(-np.sqrt(np.sqrt((rows - y) ** 2 + (cols - x) ** 2)) / (2 * 0.75**2))
    h = h / h.max()
    expected += h * (h >= h.mean())
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_adaptive_prior_bfloat16_compute_float32_params(ref):
  kp = jnp.asarray(ref["au_keypoints_px"])
  model = rm.AdaptiveWeightedPrior(grid=16, dtype=jnp.bfloat16)
  variables = model.init(jax.random.key(0), kp)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  out = model.apply(variables, kp)
  assert out.dtype == jnp.bfloat16
  ref32 = rm.AdaptiveWeightedPrior(grid=16).apply(variables, kp)
  np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(ref32), atol=5e-2)


def test_adaptive_prior_wrong_count_raises():
  model = rm.AdaptiveWeightedPrior(grid=8)
  with pytest.raises(ValueError, match=r"\(batch, 18, 2\)"):
    model.init(jax.random.key(0), jnp.zeros((1, 10, 2)))


def test_adaptive_prior_full_size_shape_only():
  model = rm.AdaptiveWeightedPrior()
  shapes = jax.eval_shape(model.init_with_output, jax.random.key(0), jnp.zeros((8, 18, 2)))
  assert shapes[0].shape == (8, 64, 64, 1)
