"""The demo's verdicts follow the numbers: both motion-fidelity parts must beat the baseline."""

import math

from me_fomm.evaluate import protocols as P
from me_fomm.evaluate.verdicts import demo_verdicts


def _summary(model, baseline):
  return {"cross_identity": {P.MODEL: model, P.BASELINE: baseline, "cases": 3}}


BASE = {"motion_correlation": 0.0, "apex_ratio": 0.0, "gt_akd": 0.165, "gt_akd_aligned": 0.160}


def test_a_model_that_moves_right_passes():
  v = demo_verdicts(
    _summary(
      {"motion_correlation": 0.58, "apex_ratio": 0.45, "gt_akd": 0.118, "gt_akd_aligned": 0.110},
      BASE,
    )
  )
  assert {k: x["passed"] for k, x in v.items()} == {
    "motion_fidelity": True,
    "akd_ground_truth": True,
    "akd_ground_truth_motion": True,
  }
  assert (
    "0.580 vs 0.000" in v["motion_fidelity"]["text"]
    and "0.118 px vs 0.165 px" in (v["akd_ground_truth"]["text"])
  )


def test_right_direction_but_far_too_much_motion_fails():
  v = demo_verdicts(
    _summary(
      {"motion_correlation": 0.9, "apex_ratio": 100.0, "gt_akd": 3.0, "gt_akd_aligned": 3.0}, BASE
    )
  )
  assert (
    not v["motion_fidelity"]["passed"]
    and "does NOT beat the baseline on both" in (v["motion_fidelity"]["text"])
  )
  assert not v["akd_ground_truth"]["passed"] and not v["akd_ground_truth_motion"]["passed"]


def test_missing_figures_never_pass():
  v = demo_verdicts(_summary({"motion_correlation": math.nan, "apex_ratio": 0.5}, BASE))
  assert not any(x["passed"] for x in v.values())
  assert demo_verdicts({"reconstruction": {}}) == {}
