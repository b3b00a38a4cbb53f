"""keypoint_prior: which frame's AU keypoints each pass gets, in the seed's value convention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.model.config import model_config
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au
from me_fomm.prior.inputs import keypoint_prior


def _landmarks(t=4, seed=0):
  """(t, 68, 2) px landmarks of a 256 px frame, different in every frame."""
  rng = np.random.default_rng(seed)
  base = np.stack(np.meshgrid(np.linspace(60, 196, 17), np.linspace(80, 200, 4)), -1).reshape(68, 2)
  return (base[None] + rng.normal(0, 2.0, (t, 68, 2))).astype(np.float32)


def _values(landmarks):
  return au_px_to_value(landmarks_to_au(landmarks), 256)


def test_onset_gives_every_frame_the_onset_keypoints():
  lm = _landmarks()
  prior = keypoint_prior(model_config("seed"), lm, lm[2])
  assert isinstance(prior["value"], np.ndarray) and prior["value"].dtype == np.float32
  np.testing.assert_array_equal(prior["value"], np.broadcast_to(_values(lm[2]), (4, 18, 2)))
  # The seed's convention px * 2 / S - 1 (S, not S - 1).
  np.testing.assert_allclose(prior["value"][0], landmarks_to_au(lm[2]) / 128 - 1, atol=1e-6)
  # Same-shape onset landmarks (a training batch: one onset per pair).
  onset = np.repeat(lm[:1], 4, 0)
  np.testing.assert_array_equal(
    keypoint_prior(model_config("seed"), lm, onset)["value"],
    np.broadcast_to(_values(lm[0]), (4, 18, 2)),
  )


def test_per_frame_gives_every_frame_its_own_keypoints():
  lm = _landmarks()
  prior = keypoint_prior(model_config("tip24"), lm, lm[2])
  np.testing.assert_array_equal(prior["value"], _values(lm))
  assert not np.allclose(prior["value"][0], prior["value"][1])


@pytest.mark.parametrize("variant", ["seed", "tip24"])
def test_jit_gives_the_numpy_values(variant):
  cfg = model_config(variant)
  lm = _landmarks()
  got = jax.jit(lambda a, b: keypoint_prior(cfg, a, b))(jnp.asarray(lm), jnp.asarray(lm[:1]))
  assert isinstance(got["value"], jax.Array)
  np.testing.assert_allclose(got["value"], keypoint_prior(cfg, lm, lm[:1])["value"], atol=1e-6)


def test_learned_keypoints_take_no_prior_and_bad_input_is_refused():
  assert keypoint_prior(model_config("fomm"), None, None) is None
  with pytest.raises(ValueError, match="facial-prior keypoints"):
    keypoint_prior(model_config("seed"), None, None)
  with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
    keypoint_prior(model_config("tip24"), np.zeros((4, 18, 2)), np.zeros((18, 2)))
  cfg = model_config("seed")
  cfg.prior_frames = "apex"
  with pytest.raises(ValueError, match="prior_frames='apex'"):
    keypoint_prior(cfg, _landmarks(), _landmarks()[0])


def test_landmark_jacobians_are_the_local_affine_motion():
  import face68

  from me_fomm.prior import au_motion
  from me_fomm.prior.inputs import follows_landmarks, landmark_jacobians

  ref = face68.face(iod=50.0, angle_deg=8.0)
  still = landmark_jacobians(ref[None], ref)
  np.testing.assert_allclose(still, np.broadcast_to(np.eye(2), (1, 18, 2, 2)), atol=1e-6)
  # An affine motion of the whole face: without the ridge every keypoint's Jacobian is its linear part;
  # the default ridge shrinks it toward the identity, along the same direction.
  a = np.array([[1.03, 0.02], [-0.01, 0.98]])
  moved = ref @ a.T + [0.7, -0.4]
  exact = landmark_jacobians(np.stack([ref, moved]), ref, ridge=1e-6)
  assert exact.shape == (2, 18, 2, 2) and exact.dtype == np.float32
  np.testing.assert_allclose(exact[1], np.broadcast_to(a, (18, 2, 2)), atol=1e-4)
  shrunk = landmark_jacobians(moved[None], ref)[0] - np.eye(2)
  assert np.all(np.abs(shrunk) <= np.abs(a - np.eye(2)) + 1e-6)
  cos = (
    (shrunk * (a - np.eye(2))).sum((1, 2))
    / np.linalg.norm(shrunk, axis=(1, 2))
    / np.linalg.norm(a - np.eye(2))
  )
  assert cos.min() > 0.9, cos
  # A local motion (AU26 lowers the jaw and the lower lip): the lower-lip keypoints stretch vertically,
  # the brows' stay the identity.
  disp = au_motion.default_model().displacement([26], ref, intensity=3.0)
  jac = landmark_jacobians((ref + disp)[None], ref)[0]
  np.testing.assert_allclose(jac[[0, 1]], np.broadcast_to(np.eye(2), (2, 2, 2)), atol=1e-3)
  assert jac[10, 1, 1] > 1.005  # keypoint 10 = landmark 57, the lower lip's centre
  assert follows_landmarks(model_config("tip24")) and not follows_landmarks(model_config("seed"))
  assert not follows_landmarks(model_config("fomm"))
