"""synthetic_me: builds without download, known landmarks, cross-identity ground truth."""

import numpy as np
import pytest

from me_fomm.data import images
from me_fomm_datasets.synthetic_me import render
from me_fomm_datasets.synthetic_me import synthetic_me_dataset_builder as S


def test_small_build_reads_back(synthetic_small):
  b = S.SyntheticMe(data_dir=str(synthetic_small), config="small_64")
  assert b.is_prepared()
  train, test = b.as_data_source("train"), b.as_data_source("test")
  assert (len(train), len(test)) == (6, 3)
  ids = set()
  for i in range(len(train)):
    clip = train[i]
    t = len(clip["frames"])
    assert 8 <= t <= 10
    assert clip["landmarks"].shape == (t, 68, 2) and clip["landmarks"].dtype == np.float32
    assert clip["ground_truth_landmarks"].shape == (t, 68, 2)
    assert len(clip["ground_truth_frames"]) == t
    assert clip["identity"] == b"grace_hopper" and clip["ground_truth_identity"] == b"astronaut"
    assert 0 < clip["onset"] < clip["apex"] < clip["offset"] < t
    assert images.decode_frame(clip["frames"][0]).shape == (64, 64, 3)
    assert images.decode_frame(clip["ground_truth_frames"][-1]).shape == (64, 64, 3)
    assert not clip["landmark_borrowed"].any()
    assert clip["au_multi_hot"].sum() >= 2
    ids.add(clip["clip_id"])
  assert len(ids) == 6
  labels = sorted(train[i]["label"] for i in range(len(train)))
  assert labels == [0, 0, 1, 1, 2, 2]  # classes cycle: 2 clips each


def test_apex_motion_is_subtle_and_scaled(synthetic_small):
  b = S.SyntheticMe(data_dir=str(synthetic_small), config="small_64")
  ds = b.as_data_source("train")
  for i in range(len(ds)):
    clip = ds[i]
    lm = clip["landmarks"]
    # Jitter moves every point alike; the expression moves some points relative to the rest.
    rel = (lm[clip["apex"]] - lm[clip["apex"]].mean(0)) - (lm[0] - lm[0].mean(0))
    peak = np.linalg.norm(rel, axis=1).max()
    assert 0.1 < peak < 4.0 * 64 / 256 + 0.3, peak  # 1-4 px at 256 -> 0.25-1 px at 64


def _dot_image(points, size, sigma=1.2):
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
  img = np.zeros((size, size), np.float64)
  for x, y in points:
    img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
  return img


def test_rendered_landmarks_follow_the_pixels():
  # A face of isolated dots at a few landmarks: after warping, each dot's centroid must be
  # where render_clip says that landmark went (this is what lets us skip dlib per frame).
  size = 256
  rng = np.random.default_rng(0)
  base = np.array([[x, y] for y in np.linspace(60, 200, 9) for x in np.linspace(50, 210, 8)])
  landmarks = base[:68] + rng.normal(0, 1.0, (68, 2))
  chosen = [8, 20, 37, 48, 54, 57]
  img = _dot_image(landmarks[chosen], size)
  image = np.repeat((img / img.max() * 255).astype(np.uint8)[..., None], 3, axis=2)
  motion = render.sample_motion(np.random.default_rng(1), "surprise", 8, amplitude=(4.0, 4.0))
  motion.jitter[:] = 0.0
  frames, lms = render.render_clip(image, landmarks, motion, sigma_frac=0.08)
  apex = motion.apex
  moved = np.linalg.norm(lms[apex] - landmarks, axis=1)
  assert moved.max() > 2.0
  f = frames[apex][..., 0].astype(np.float64)
  ys, xs = np.mgrid[0:size, 0:size]
  for k in chosen:
    x, y = lms[apex, k]
    win = (np.abs(xs - x) < 5) & (np.abs(ys - y) < 5)
    w = f * win
    centroid = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
    assert np.allclose(centroid, lms[apex, k], atol=0.25), (k, centroid, lms[apex, k])


def test_render_is_deterministic_per_seed():
  img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
  lm = np.random.default_rng(1).uniform(10, 54, (68, 2))
  m1 = render.sample_motion(np.random.default_rng([3, 0, 1]), "negative", 12)
  m2 = render.sample_motion(np.random.default_rng([3, 0, 1]), "negative", 12)
  m3 = render.sample_motion(np.random.default_rng([4, 0, 1]), "negative", 12)
  a, b = render.render_clip(img, lm, m1), render.render_clip(img, lm, m2)
  assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0])) and np.array_equal(a[1], b[1])
  assert not np.array_equal(a[1], render.render_clip(img, lm, m3)[1])


def test_class_patterns_move_the_right_places():
  lm = np.zeros((68, 2))
  lm[36:42] = [100, 100]
  lm[42:48] = [150, 100]
  pos = S.render.pattern_displacement((6, 12), lm)
  assert pos[48, 1] < 0 and pos[54, 1] < 0 and pos[48, 0] < 0 < pos[54, 0]  # corners up, out
  sur = render.pattern_displacement((1, 2, 5, 26), lm)
  assert sur[8, 1] > 0 and sur[21, 1] < 0  # jaw drops, brows rise
  assert np.isclose(np.linalg.norm(sur, axis=1).max(), 1.0)


def test_config_errors_and_names():
  assert S.synthetic_config("demo", 64).name == "demo_64"
  assert S.synthetic_config("full", 256).name == "full"
  assert S.synthetic_config("small", 64, num_train=4, seed=2).name == "small_64_s2_train4"
  with pytest.raises(ValueError, match="variant"):
    S.synthetic_config("huge")
  with pytest.raises(ValueError, match="unknown synthetic_me options"):
    S.synthetic_config("small", frames=3)
  with pytest.raises(ValueError, match="min_frames"):
    S.synthetic_config("small", min_frames=4)
