"""Fitting the AU model: a coded corpus with planted patterns (clips of several subjects in varied head poses,
with head motion between onset and apex, landmark noise and varying intensity) gives the patterns back."""

import face68
import numpy as np
import pytest

from me_fomm.prior import au_fit, au_motion

PLANTED = (1, 4, 6, 7, 12, 15, 26)


def _planted(rng) -> dict:
  """Random patterns (IODs in the face frame) on 6-10 random landmarks each, never the still ones."""
  movable = np.setdiff1d(np.arange(68), au_fit.STILL)
  out = {}
  for au in PLANTED:
    p = np.zeros((68, 2))
    idx = rng.choice(movable, size=rng.integers(6, 11), replace=False)
    p[idx] = rng.normal(0, 0.03, (len(idx), 2))
    out[au] = p
  return out


def _rotation(deg):
  a = np.deg2rad(deg)
  return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _corpus(rng, patterns, clips=160, subjects=12):
  """Onset and apex landmarks in pixels of clips coded with 1-3 planted AUs each."""
  shapes = [
    face68.face(iod=1.0, centre=(0, 0)) + rng.normal(0, 0.03, (68, 2)) for _ in range(subjects)
  ]
  onsets, apexes, codes, subject_ids = [], [], [], []
  for k in range(clips):
    s = k % subjects
    aus = tuple(rng.choice(PLANTED, size=rng.integers(1, 4), replace=False).tolist())
    local = sum(rng.uniform(0.7, 1.3) * patterns[a] for a in aus)
    rot, iod = _rotation(rng.uniform(-15, 15)), rng.uniform(60, 200)
    centre = rng.uniform(80, 300, 2)
    onset = centre + iod * shapes[s] @ rot.T
    apex = centre + iod * (shapes[s] + local) @ rot.T
    # Head motion between onset and apex (the alignment removes it) and dlib-like jitter.
    head, shift = 1.0 + rng.uniform(-0.01, 0.01), rng.uniform(-2, 2, 2)
    apex = (apex - centre) @ (head * _rotation(rng.uniform(-1.5, 1.5))).T + centre + shift
    onsets.append(onset + rng.normal(0, 0.004 * iod, (68, 2)))
    apexes.append(apex + rng.normal(0, 0.004 * iod, (68, 2)))
    codes.append(aus)
    subject_ids.append(f"s{s:02d}")
  return onsets, apexes, codes, subject_ids


def _cosine(a, b):
  a, b = a.ravel(), b.ravel()
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_fit_recovers_planted_patterns_and_reports_held_out_error():
  rng = np.random.default_rng(0)
  patterns = _planted(rng)
  onsets, apexes, codes, subjects = _corpus(rng, patterns)
  disp = np.stack([au_fit.apex_displacement(o, a) for o, a in zip(onsets, apexes)])
  timings = [(0, 4, 10, 200.0)] * 5 + [(2, 5, 12, 100.0)] * 5
  model = au_fit.fit(disp, codes, subjects, timings=timings, source="planted")
  assert model.aus == PLANTED and model.scale == 1.0
  cosines = {au: _cosine(model.patterns[au], patterns[au]) for au in PLANTED}
  assert min(cosines.values()) >= 0.95, cosines
  for au in PLANTED:  # and the size: intensity 1 is the mean planted intensity
    ratio = np.linalg.norm(model.patterns[au]) / np.linalg.norm(patterns[au])
    assert 0.9 < ratio < 1.1, (au, ratio)
  fit = model.fit
  assert fit["folds"] == 5 and fit["subjects"] == 12 and fit["clips"] == 160
  # Held-out subjects: well below predicting no motion (most landmarks stand still, so both errors carry
  # the landmark noise; the rest is the unmodelled intensity variation).
  assert fit["held_out_error"] < 0.6 * fit["zero_motion_error"] and fit["explained"] > 0.7, fit
  assert model.duration_ms == pytest.approx(75.0) and model.apex_fraction == pytest.approx(0.35)
  # The fitted model drives a face like the default one: in pixels of that face.
  face = face68.face(iod=80.0, angle_deg=10.0)
  moved = au_motion.to_face(model.displacement([12], face), face)
  np.testing.assert_allclose(moved, model.patterns[12], atol=1e-9)


def test_alignment_removes_head_motion():
  face = face68.face(iod=70.0, angle_deg=5.0)
  m = 1.02 * _rotation(2.0)
  np.testing.assert_allclose(au_fit.apex_displacement(face, face @ m.T + [3.0, -1.0]), 0, atol=1e-9)


def test_fit_refuses_too_few_coded_clips():
  disp = np.zeros((3, 68, 2))
  with pytest.raises(ValueError, match="no action unit is coded in at least 3"):
    au_fit.fit(disp, [(4,), (7,), (4, 7)], ["a", "b", "c"])
  one = au_fit.fit(disp, [(4,), (7,), (4, 7)], ["a", "a", "a"], min_clips=2)
  assert one.aus == (4, 7) and one.fit["folds"] == 0 and "one subject" in one.fit["note"]
