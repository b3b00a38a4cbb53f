"""The evaluation protocols, each scored for the model and for the copy-the-target baseline side by side.

* Reconstruction (FOMM's protocol): the first frame of a clip drives its own clip; the generated frames are
  compared with the real ones: L1, LPIPS, AKD, MKR, AED (see `metrics`).
* Cross-identity: a target face driven by another person's clip. There is no ground truth, so we score what
  must be kept and what must be transferred: identity (AED between the target and each generated frame) and
  motion fidelity (`motion`: AU keypoint trajectories of driving vs generated, correlation and apex ratio).
* Ground truth (synthetic_me): the corpus stores the same motion rendered on the held-out identity, so a
  cross-identity generation can be scored directly against it: L1, LPIPS, AKD.
* AU-driven: the cross-identity cases generated from each clip's FACS codes and its onset/apex/offset alone
  (`me_fomm.generate.driving.AuMotion`, no driving frames), scored exactly like the clip-driven generation
  (against the driving clip's motion and the ground truth), with the clip-driven result as a row of its own.

The baseline copies the target unchanged into every frame. It is perfect on identity and scores the floor on
motion; what a model adds is the distance between its row and the baseline's. Where a ground truth exists it
gets a row too, scored like a generation (identity, motion fidelity): the ceiling the measurement allows.

Landmarks are tracked through a clip in its reference frame's box at sub-pixel precision (`metrics`, module
doc). Motion fidelity reads the driving clip's trajectory from the clip's stored landmarks when it has them
(exact for synthetic_me, dlib at the corpus build's resolution for the corpora), else from dlib.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Sequence

import numpy as np

from me_fomm.data.clip import Clip
from me_fomm.evaluate import metrics as M
from me_fomm.evaluate.motion import motion_fidelity_from_landmarks

log = logging.getLogger(__name__)

MODEL, BASELINE, GROUND_TRUTH = "model", "copy_target", "ground_truth"
CLIP_DRIVEN = "clip_driven"  # au_driven only: the same case generated from the driving clip
ROWS = (MODEL, CLIP_DRIVEN, BASELINE, GROUND_TRUTH)


@dataclasses.dataclass
class Case:
  """One generation to score, at the model's size S.

  Every frame array is uint8 RGB as stored (clip frames, target crops): target (S, S, 3), driving (T, S, S, 3),
  ground_truth (T, S, S, 3) or None. They are converted to float32 [0, 1] once, where the model (the animator)
  or a metric needs them (`frames01`). Landmarks are float32 dlib pixels at S: target_landmarks (68, 2),
  driving_landmarks (T, 68, 2), or None. reference: onset index; apex, offset: driving apex and offset or None;
  name, label and target_name for the report; action_units: the clip's FACS codes (the au_driven protocol).
  """

  name: str
  target: np.ndarray
  target_landmarks: np.ndarray | None
  driving: np.ndarray
  driving_landmarks: np.ndarray | None
  reference: int = 0
  apex: int | None = None
  label: str | None = None
  target_name: str = ""
  ground_truth: np.ndarray | None = None
  fps: float = 25.0
  offset: int | None = None
  action_units: tuple = ()

  def __post_init__(self):
    for key in ("target", "driving", "ground_truth"):
      value = getattr(self, key)
      if value is not None and np.asarray(value).dtype != np.uint8:
        raise TypeError(
          f"Case {self.name}: {key} must be uint8 frames, got {np.asarray(value).dtype}"
        )


@dataclasses.dataclass
class Scored:
  """Per-case results: metric values for the model and the baseline, plus the frames for the report."""

  case: Case
  generated: np.ndarray  # float32 (T, S, S, 3)
  values: dict  # {MODEL: {metric: value}, BASELINE: {...}, GROUND_TRUTH (if any): {...}}
  # dlib 68-landmark tracks (T, 68, 2) px the motion metrics read, for the report's trajectory plots:
  # 'driving' and each row of `values` (cross-identity protocols; empty for reconstruction).
  tracks: dict = dataclasses.field(default_factory=dict)


def frames01(x) -> np.ndarray:
  """float32 [0, 1] frames from uint8 ones (float frames, e.g. generated, pass as float32)."""
  x = np.asarray(x)
  return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _baseline(case: Case) -> np.ndarray:
  return np.repeat(frames01(case.target)[None], len(case.driving), axis=0)


def _lpips(reference, candidates: dict) -> dict:
  """{name: mean LPIPS to `reference`}: the reference's VGG features computed once for all."""
  return {k: float(np.mean(v)) for k, v in M.lpips_model().against(reference, candidates).items()}


def reconstruction_case(clip: Clip, driving: np.ndarray, landmarks: np.ndarray | None) -> Case:
  """The first frame drives its own clip (FOMM's reconstruction protocol)."""
  return Case(
    name=clip.name,
    target=driving[0],
    target_landmarks=None if landmarks is None else landmarks[0],
    driving=driving,
    driving_landmarks=landmarks,
    reference=0,
    apex=clip.apex,
    label=clip.label,
    target_name=clip.name + "[0]",
    fps=clip.fps,
  )


def score_reconstruction(
  cases: Sequence[Case], generate: Callable[[Case], np.ndarray], analyzer: M.FaceAnalyzer
) -> list[Scored]:
  out = []
  for case in cases:
    real = frames01(case.driving)
    ref_track = analyzer.analyze(real, descriptors=True, track_reference=case.reference)
    row = {}
    candidates = {MODEL: frames01(generate(case)), BASELINE: _baseline(case)}
    lpips = _lpips(real, candidates)
    for who, frames in candidates.items():
      track = analyzer.analyze(
        frames, descriptors=True, box_from=ref_track, track_reference=case.reference
      )
      row[who] = {
        "l1": M.l1(frames, real),
        "lpips": lpips[who],
        "akd": M.akd(track.landmarks, ref_track.landmarks),
        "mkr": M.mkr(track.landmarks, ref_track.landmarks),
        "aed": M.aed(track.descriptors, ref_track.descriptors),
      }
      if who == MODEL:
        generated = frames
    out.append(Scored(case=case, generated=generated, values=row))
  return out


def score_cross_identity(
  cases: Sequence[Case], generate: Callable[[Case], np.ndarray], analyzer: M.FaceAnalyzer
) -> list[Scored]:
  """Identity (AED to the target), motion fidelity, and, where the case has it, ground-truth metrics (plus
  the ground truth's own row: identity and motion fidelity of the true frames)."""
  out = []
  for case in cases:
    target_desc = analyzer.descriptor(frames01(case.target))
    if case.driving_landmarks is not None:
      drv_landmarks = np.asarray(case.driving_landmarks, np.float64)
    else:
      drv_landmarks = analyzer.analyze(
        frames01(case.driving), descriptors=False, track_reference=case.reference
      ).landmarks
    gt = None if case.ground_truth is None else frames01(case.ground_truth)
    gt_track = (
      None if gt is None else analyzer.analyze(gt, descriptors=True, track_reference=case.reference)
    )
    row, tracks = {}, {"driving": drv_landmarks}
    generated = frames01(generate(case))
    rows = [(MODEL, generated), (BASELINE, _baseline(case))] + (
      [(GROUND_TRUTH, gt)] if gt is not None else []
    )
    gt_lpips = None if gt is None else _lpips(gt, dict(rows[:2]))
    for who, frames in rows:
      track = (
        gt_track
        if who == GROUND_TRUTH
        else analyzer.analyze(frames, descriptors=True, track_reference=case.reference)
      )
      tracks[who] = track.landmarks
      values = {"aed_to_target": M.aed(track.descriptors, target_desc)}
      try:
        mf = motion_fidelity_from_landmarks(
          drv_landmarks, track.landmarks, apex=case.apex, reference=case.reference
        )
        values.update(
          motion_correlation=mf.correlation,
          apex_ratio=mf.apex_ratio,
          apex_magnitude=mf.generated_apex_magnitude,
          driving_apex_magnitude=mf.driving_apex_magnitude,
        )
      except ValueError as e:  # no face in a reference frame: the clip cannot be scored on motion
        log.warning("%s: motion fidelity not computed (%s)", case.name, e)
        values.update(
          motion_correlation=float("nan"),
          apex_ratio=float("nan"),
          apex_magnitude=float("nan"),
          driving_apex_magnitude=float("nan"),
        )
      if gt is not None and who != GROUND_TRUTH:
        values.update(
          gt_l1=M.l1(frames, gt),
          gt_lpips=gt_lpips[who],
          gt_akd=M.akd(track.landmarks, gt_track.landmarks),
          gt_akd_aligned=M.akd_onset_aligned(track.landmarks, gt_track.landmarks, case.reference),
        )
      row[who] = values
    out.append(Scored(case=case, generated=generated, values=row, tracks=tracks))
  return out


def summarize(scored: Sequence[Scored]) -> dict:
  """Mean of each metric over cases (NaN entries skipped) per row (model, baseline, ground truth where
  cases have one), plus counts."""
  summary = {}
  for who in ROWS:
    if not any(who in s.values for s in scored):
      continue
    keys = sorted({k for s in scored for k in s.values.get(who, {})})
    summary[who] = {
      k: M.mean_finite([s.values.get(who, {}).get(k, np.nan) for s in scored]) for k in keys
    }
    summary[who]["scored_cases"] = {
      k: int(sum(np.isfinite(s.values.get(who, {}).get(k, np.nan)) for s in scored)) for k in keys
    }
  summary["cases"] = len(scored)
  return summary


# Which way is better, for the report and the demo's verdict.
LOWER_IS_BETTER = {
  "l1",
  "lpips",
  "akd",
  "mkr",
  "aed",
  "aed_to_target",
  "gt_l1",
  "gt_lpips",
  "gt_akd",
  "gt_akd_aligned",
}
HIGHER_IS_BETTER = {"motion_correlation"}
CLOSER_TO_ONE = {"apex_ratio"}


def better(metric: str, model: float, baseline: float) -> bool | None:
  """Is the model's value better than the baseline's? None when either is NaN or the metric has no order."""
  if not (np.isfinite(model) and np.isfinite(baseline)):
    return None
  if metric in LOWER_IS_BETTER:
    return model < baseline
  if metric in HIGHER_IS_BETTER:
    return model > baseline
  if metric in CLOSER_TO_ONE:
    return abs(model - 1.0) < abs(baseline - 1.0)
  return None
