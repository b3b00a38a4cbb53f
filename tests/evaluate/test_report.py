"""Protocol bookkeeping (model beside the baseline) and the written report, with a stand-in face analyzer."""

import json
import os

import numpy as np
import pytest

from me_fomm.data.clip import Clip
from me_fomm.evaluate import metrics as M
from me_fomm.evaluate import protocols as P
from me_fomm.evaluate import report


class _Analyzer:
  """Stand-in for dlib: 'landmarks' follow the mean brightness of a frame's top-left block.

  A still frame gives the same landmarks every time; brighter blocks move the brow points 17..26 down.
  """

  def analyze(self, frames, descriptors=True, box_from=None, track_reference=None):
    frames = np.asarray(frames, np.float32)
    t = frames.shape[0]
    base = np.stack(np.meshgrid(np.linspace(10, 50, 17), np.linspace(10, 50, 4)), -1).reshape(
      -1, 2
    )[:68]
    lms = np.repeat(base[None], t, axis=0).astype(np.float32)
    lms[:, 17:27, 1] += frames[:, :8, :8].mean(axis=(1, 2, 3))[:, None] * 10
    desc = np.repeat(frames.mean(axis=(1, 2))[:, :1], 128, axis=1) if descriptors else None
    return M.FaceTrack(landmarks=lms, descriptors=desc)

  def descriptor(self, image):
    return self.analyze(np.asarray(image)[None]).descriptors[0]


def _case(t=6, gt=True):
  drv = np.zeros((t, 32, 32, 3), np.uint8)
  drv[:, :8, :8] = (np.array([0, 40, 80, 120, 80, 40])[:t, None, None, None]).astype(np.uint8)
  target = np.full((32, 32, 3), 128, np.uint8)
  target[:8, :8] = 0
  truth = drv.copy() if gt else None
  return P.Case(
    name="c0",
    target=target,
    target_landmarks=None,
    driving=drv,
    driving_landmarks=None,
    reference=0,
    apex=3,
    label="positive",
    target_name="tgt",
    ground_truth=truth,
    fps=100.0,
  )


def test_cross_identity_scores_model_and_baseline(tmp_path):
  case = _case()

  # A "model" that reproduces the driving block on the target: perfect motion, exact ground truth here.
  # Like the animator it returns float32 [0, 1] frames.
  def generate(c):
    out = np.repeat(P.frames01(c.target)[None], len(c.driving), axis=0)
    out[:, :8, :8] = P.frames01(c.driving[:, :8, :8])
    return out

  scored = P.score_cross_identity([case], generate, _Analyzer())
  model, base = scored[0].values[P.MODEL], scored[0].values[P.BASELINE]
  assert model["motion_correlation"] == pytest.approx(1.0)
  assert model["apex_ratio"] == pytest.approx(1.0)
  assert base["motion_correlation"] == 0.0 and base["apex_ratio"] == 0.0
  assert base["aed_to_target"] == 0.0 and model["aed_to_target"] > 0
  assert model["gt_akd"] == pytest.approx(0.0, abs=1e-5) and base["gt_akd"] > 0
  # The ground truth is scored like a generation (the ceiling of the measurement), without gt_* metrics.
  truth = scored[0].values[P.GROUND_TRUTH]
  assert truth["motion_correlation"] == pytest.approx(1.0) and "gt_akd" not in truth
  summary = P.summarize(scored)
  assert summary[P.GROUND_TRUTH]["apex_ratio"] == pytest.approx(1.0)
  cmp = report.comparisons(summary)
  assert (
    cmp["motion_correlation"] is True and cmp["gt_akd"] is True and cmp["aed_to_target"] is False
  )

  paths = report.write_report(
    str(tmp_path / "r"),
    {"cross_identity": scored},
    meta={"checkpoint": "x"},
    verdicts={"motion": {"passed": True, "text": "motion ok"}},
  )
  doc = json.load(open(paths["metrics"]))
  proto = doc["protocols"]["cross_identity"]
  assert proto["summary"]["model"]["motion_correlation"] == pytest.approx(1.0)
  assert proto["summary"]["copy_target"]["apex_ratio"] == 0.0
  assert "Euclidean (L2)" in doc["metric_definitions"]["aed_to_target"]
  case_doc = proto["cases"][0]
  # The figures of a clip scored on motion: trajectory plot, apex motion map, magnified GIF (labelled).
  for key in ("gif", "thumbnail", "trajectory", "motion_map", "magnified_gif"):
    assert os.path.isfile(os.path.join(tmp_path / "r", case_doc[key])), key
  assert case_doc["trajectory"] == "media/cross_identity_000_c0_trajectory.png"
  assert os.path.isfile(os.path.join(tmp_path / "r", proto["summary_chart"]))
  page = open(paths["html"]).read()
  assert (
    "copy target" in page
    and "motion_correlation" in page
    and "PASS" in page
    and "ground truth" in page
  )
  assert proto["cases"][0][P.GROUND_TRUTH]["motion_correlation"] == pytest.approx(1.0)
  assert case_doc["gif"] in page and case_doc["trajectory"] in page and "magnified x8" in page


def test_trajectory_curves_follow_the_driving_motion():
  from me_fomm.evaluate import figures

  # The brows (17..26) move down over the clip and back; everything else is still.
  t = 6
  base = np.stack(np.meshgrid(np.linspace(10, 50, 17), np.linspace(10, 50, 4)), -1).reshape(-1, 2)
  lms = np.repeat(base[None, :68], t, axis=0).astype(np.float64)
  amp = np.array([0, 1, 2, 3, 2, 1], np.float64)
  moving = lms.copy()
  moving[:, 17:27, 1] += amp[:, None]
  opposite = lms.copy()
  opposite[:, 17:27, 1] -= amp[:, None]
  curves = figures.region_curves(
    {"driving": moving, P.MODEL: moving, P.BASELINE: lms, "reversed": opposite}, 0, apex=3
  )
  brows = {who: c["brows"] for who, c in curves.items()}
  assert np.argmax(brows["driving"]) == 3 and brows["driving"][3] > 0
  np.testing.assert_allclose(brows[P.MODEL], brows["driving"])
  np.testing.assert_allclose(brows[P.BASELINE], 0.0, atol=1e-9)
  assert brows["reversed"][3] < 0
  # No face in the driving onset frame: no curves (and no plot).
  moving[0] = np.nan
  assert figures.region_curves({"driving": moving}, 0) == {}


def test_reconstruction_baseline_and_nan_handling(tmp_path):
  case = _case(gt=False)
  scored = P.score_reconstruction(
    [P.reconstruction_case(Clip(frames=case.driving, fps=100.0, name="c0"), case.driving, None)],
    lambda c: c.driving.astype(np.float32) / 255.0,
    _Analyzer(),
  )
  model, base = scored[0].values[P.MODEL], scored[0].values[P.BASELINE]
  assert model["l1"] == pytest.approx(0.0, abs=1e-7) and model["akd"] == pytest.approx(
    0.0, abs=1e-5
  )
  assert base["l1"] > 0 and base["akd"] > 0 and model["mkr"] == 0.0
  # NaN (not computable) survives into JSON as null, never as an invalid NaN token.
  scored[0].values[P.MODEL]["akd"] = float("nan")
  paths = report.write_report(str(tmp_path / "r"), {"reconstruction": scored})
  doc = json.load(open(paths["metrics"]))
  assert doc["protocols"]["reconstruction"]["cases"][0]["model"]["akd"] is None
  assert P.better("akd", float("nan"), 1.0) is None
  assert P.better("apex_ratio", 0.9, 0.0) is True


def test_build_cases_pairs_other_subjects_and_uses_ground_truth():
  import ml_collections

  from me_fomm.evaluate import runner

  cfg = ml_collections.ConfigDict(dict(image_size=16, kp_mode="learned"))
  lms = np.zeros((4, 68, 2), np.float32)

  def clip(name, subject, value, gt=None):
    frames = np.full((4, 32, 32, 3), value, np.uint8)
    return Clip(
      frames=frames,
      fps=25.0,
      name=name,
      landmarks=lms * 2,
      onset=1,
      label="positive",
      subject=subject,
      ground_truth=gt,
    )

  clips = [clip("a1", "A", 10), clip("a2", "A", 20), clip("b1", "B", 30)]
  recon, cross = runner.build_cases(clips, cfg)
  assert [c.name for c in recon] == ["a1", "a2", "b1"] and recon[0].driving.shape == (4, 16, 16, 3)
  # Each clip drives the onset frame of the next clip of another subject.
  assert [(c.name, c.target_name) for c in cross] == [
    ("b1_a1", "b1"),
    ("b1_a2", "b1"),
    ("a1_b1", "a1"),
  ]
  assert cross[0].target.dtype == np.uint8 and cross[0].target[0, 0, 0] == 30
  # synthetic_me: the held-out identity's onset frame is the target and its clip the ground truth.
  gt = np.full((4, 32, 32, 3), 99, np.uint8)
  gt[1] = 77
  _, cross = runner.build_cases([clip("s", "A", 10, gt=gt)], cfg)
  assert cross[0].target_name == "held-out identity" and cross[0].ground_truth.shape == (
    4,
    16,
    16,
    3,
  )
  assert cross[0].target[0, 0, 0] == 77


def test_case_frames_are_uint8_as_stored():
  case = _case()
  with pytest.raises(TypeError, match="target must be uint8"):
    P.Case(
      name="c",
      target=P.frames01(case.target),
      target_landmarks=None,
      driving=case.driving,
      driving_landmarks=None,
    )
  with pytest.raises(TypeError, match="ground_truth must be uint8"):
    P.Case(
      name="c",
      target=case.target,
      target_landmarks=None,
      driving=case.driving,
      driving_landmarks=None,
      ground_truth=P.frames01(case.driving),
    )
  assert P.frames01(case.target).dtype == np.float32 and P.frames01(case.target).max() == 128 / 255
