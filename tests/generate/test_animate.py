"""The animator on the two variants the end-to-end test does not train: fomm (learned keypoints) and tip24
(per-frame prior keypoints), with tiny random models."""

import jax
import numpy as np
import pytest

from me_fomm.generate.animate import Animator
from me_fomm.model import build_models, init_variables
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au
from me_fomm_experiments.configs.demo import tiny_model


def _face(t, rng):
  """(t, 68, 2) px landmarks of a rough face in a 32 px frame, moving a little."""
  base = np.stack(np.meshgrid(np.linspace(8, 24, 17), np.linspace(10, 24, 4)), -1).reshape(68, 2)
  return (base[None] + rng.normal(0, 0.3, (t, 68, 2))).astype(np.float32)


@pytest.mark.parametrize("variant", ["fomm", "tip24"])
def test_animator_variants(variant):
  cfg = tiny_model(variant, image_size=32)
  models = build_models(cfg)
  variables = init_variables(models, cfg, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  t = 5
  target = rng.uniform(size=(32, 32, 3)).astype(np.float32)
  driving = rng.uniform(size=(t, 32, 32, 3)).astype(np.float32)
  lms = _face(t, rng) if variant == "tip24" else None
  target_lms = _face(1, rng)[0] if variant == "tip24" else None

  out = Animator(models, variables, cfg, batch_size=2).run(
    target, driving, target_lms, lms, reference=1
  )
  assert out.prediction.shape == (t, 32, 32, 3) and out.prediction.dtype == np.float32
  assert (
    np.isfinite(out.prediction).all() and 0 <= out.prediction.min() and out.prediction.max() <= 1
  )
  # Relative motion: at the reference frame the target's own keypoints drive it.
  np.testing.assert_allclose(out.kp_norm[1], out.kp_source, atol=1e-5)
  if variant == "tip24":
    # Per-frame prior: every frame's keypoint values are its own AU keypoints.
    np.testing.assert_allclose(out.kp_driving, au_px_to_value(landmarks_to_au(lms), 32), atol=1e-6)
  if variant == "fomm":
    # Absolute mode drives with the driving keypoints themselves.
    ab = Animator(models, variables, cfg, relative=False, batch_size=8).run(target, driving)
    np.testing.assert_allclose(ab.kp_norm, ab.kp_driving, atol=1e-6)
  with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
    Animator(models, variables, cfg).run(target[:16], driving, target_lms, lms)
  bad = driving.copy()
  bad[2, 0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="driving_frames: image has 1 non-finite"):
    Animator(models, variables, cfg).run(target, bad, target_lms, lms)
  if variant == "tip24":
    with pytest.raises(ValueError, match="target_landmarks"):
      Animator(models, variables, cfg).run(target, driving)
    with pytest.raises(ValueError, match="NaN or inf"):
      Animator(models, variables, cfg).run(target, driving, target_lms, lms * np.nan)


def test_landmarks_alone_drive_tip24_and_regions_hold_the_rest():
  cfg = tiny_model("tip24", image_size=32)
  models = build_models(cfg)
  variables = init_variables(models, cfg, jax.random.PRNGKey(1))
  rng = np.random.default_rng(1)
  t = 5
  target = rng.uniform(size=(32, 32, 3)).astype(np.float32)
  target_lms = _face(1, rng)[0]
  track = np.concatenate([target_lms[None], _face(t - 1, rng)])
  animator = Animator(models, variables, cfg, batch_size=4)
  by_landmarks = animator.run(target, None, target_lms, track)
  assert by_landmarks.prediction.shape == (t, 32, 32, 3)
  # The keypoints are those a driving clip with the same landmarks gives (the Jacobians come from the
  # landmarks instead of the driving image).
  frames = rng.uniform(size=(t, 32, 32, 3)).astype(np.float32)
  by_clip = animator.run(target, frames, target_lms, track)
  np.testing.assert_allclose(by_landmarks.kp_norm, by_clip.kp_norm, atol=1e-5)
  np.testing.assert_allclose(
    by_landmarks.kp_norm, au_px_to_value(landmarks_to_au(track), 32), atol=1e-5
  )
  # A still track is the target itself as a driving clip: relative identity, the same frames.
  still = np.repeat(target_lms[None], 3, axis=0)
  a = animator.run(target, None, target_lms, still).prediction
  b = animator.run(target, np.repeat(target[None], 3, axis=0), target_lms, still).prediction
  np.testing.assert_allclose(a, b, atol=1e-5)
  # Regions: the brows' keypoints (0, 1) stay the target's; the mouth's move, magnified.
  mouth = Animator(models, variables, cfg, magnify=2.0, regions=["mouth"], batch_size=4).run(
    target, None, target_lms, track
  )
  np.testing.assert_allclose(mouth.kp_norm[:, :2], np.broadcast_to(mouth.kp_source[:2], (t, 2, 2)))
  moved = by_landmarks.kp_norm[:, 7:12] - by_landmarks.kp_source[7:12]
  np.testing.assert_allclose(mouth.kp_norm[:, 7:12] - mouth.kp_source[7:12], 2 * moved, atol=1e-5)
  for variant in ("seed", "fomm"):
    other = tiny_model(variant, image_size=32)
    om = build_models(other)
    ov = {"kp_detector": {}, "generator": {}}  # refused before any weight is read
    with pytest.raises(ValueError, match=f"needs .*a tip24 checkpoint.*this one is {variant}"):
      Animator(om, ov, other).run(target, None, target_lms, track)
  with pytest.raises(ValueError, match="--regions needs AU keypoints"):
    Animator(om, ov, other, regions=["mouth"])
