"""AU keypoints from dlib's 68 landmarks: parity with the seed fixture, the mirror permutation, errors."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.prior import au_keypoints as au

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "reference" / "seed_small_s0.npz"


@pytest.fixture(scope="module")
def ref():
  return np.load(FIXTURE)


def test_matches_seed_fixture_numpy(ref):
  out = au.landmarks_to_au(ref["landmarks68_px"])
  assert isinstance(out, np.ndarray) and out.shape == (2, 18, 2) and out.dtype == np.float32
  np.testing.assert_allclose(out, ref["au_keypoints_px"], atol=1e-5)


def test_matches_seed_fixture_jax_jit_and_integer_input(ref):
  lm = jnp.asarray(ref["landmarks68_px"].astype(np.int32))  # the seed stored dlib's points as ints
  out = jax.jit(au.landmarks_to_au)(lm)
  assert isinstance(out, jax.Array) and out.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(out), ref["au_keypoints_px"], atol=1e-5)


def test_leading_batch_dims_and_explicit_formula():
  rng = np.random.default_rng(0)
  lm = rng.uniform(0, 255, size=(3, 4, 68, 2)).astype(np.float32)
  out = au.landmarks_to_au(lm)
  assert out.shape == (3, 4, 18, 2)
  d = lm[..., 42, 0] - lm[..., 39, 0]
  np.testing.assert_allclose(
    out[..., :12, :], lm[..., [19, 24, 27, 38, 41, 43, 46, 48, 54, 55, 57, 59], :]
  )
  np.testing.assert_allclose(out[..., 12, 0], lm[..., 31, 0] - d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 13, 0], lm[..., 35, 0] + d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 14, 1], lm[..., 41, 1] + d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 15, 1], lm[..., 46, 1] + d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 16, 0], lm[..., 48, 0] - d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 17, 0], lm[..., 54, 0] + d / 2, rtol=1e-6)
  np.testing.assert_allclose(out[..., 12:14, 1], lm[..., [31, 35], 1])  # only the named axis moves


def test_mirror_is_an_involution_mapping_brow_to_brow():
  perm = au.MIRROR_68
  assert sorted(perm.tolist()) == list(range(68))
  np.testing.assert_array_equal(perm[perm], np.arange(68))
  np.testing.assert_array_equal(perm[au.RIGHT_BROW], au.LEFT_BROW[::-1])
  np.testing.assert_array_equal(perm[au.RIGHT_EYE], [45, 44, 43, 42, 47, 46])
  for fixed in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
    assert perm[fixed] == fixed
  np.testing.assert_array_equal(au.MIRROR_AU[au.MIRROR_AU], np.arange(18))


def test_mirror_landmarks_geometry_and_au_consistency(ref):
  lm = ref["landmarks68_px"]
  width = 256
  m = au.mirror_landmarks(lm, width)
  np.testing.assert_allclose(au.mirror_landmarks(m, width), lm)
  # The subject's right brow (17..21) sits left of the left brow (22..26) in the image, also after the flip.
  assert m[:, au.RIGHT_BROW, 0].mean() < m[:, au.LEFT_BROW, 0].mean()
  np.testing.assert_allclose(m[:, 19], np.stack([width - 1 - lm[:, 24, 0], lm[:, 24, 1]], -1))
  # Deriving AU keypoints commutes with the flip.
  np.testing.assert_allclose(
    au.landmarks_to_au(m), au.mirror_au(au.landmarks_to_au(lm), width), atol=1e-5
  )
  mj = au.mirror_landmarks(jnp.asarray(lm), width)
  np.testing.assert_allclose(np.asarray(mj), m)


def test_value_conversion_is_the_seeds(ref):
  value = au.au_px_to_value(ref["au_keypoints_px"][:1], 256)
  np.testing.assert_allclose(value, ref["kp_source/value"], atol=1e-6)
  np.testing.assert_allclose(
    au.value_to_au_px(jnp.asarray(value), 256), ref["au_keypoints_px"][:1], atol=1e-4
  )


@pytest.mark.parametrize("shape", [(68,), (67, 2), (2, 68, 3), (5, 18, 2)])
def test_wrong_shape_raises(shape):
  with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
    au.landmarks_to_au(np.zeros(shape, np.float32))


def test_non_finite_and_bad_width_raise():
  lm = np.zeros((68, 2), np.float32)
  lm[3, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    au.landmarks_to_au(lm)
  with pytest.raises(ValueError, match="width"):
    au.mirror_landmarks(np.zeros((68, 2)), 0)
  with pytest.raises(ValueError, match="18"):
    au.mirror_au(np.zeros((68, 2)), 10)
