"""The demo's claims, checked on the cross-identity summary: does the model beat the copy-the-target
baseline on motion fidelity and on AKD against the ground truth? Each verdict is {'passed', 'text'}."""

from __future__ import annotations

from typing import Mapping

from me_fomm.evaluate import protocols as P

NAN = float("nan")


def _pair(summary: Mapping, metric: str) -> tuple[float, float]:
  return summary[P.MODEL].get(metric, NAN), summary[P.BASELINE].get(metric, NAN)


def _verdict(passed: bool, claim: str, good: str, bad: str) -> dict:
  return {"passed": passed, "text": f"{claim}: the model " + (good if passed else bad)}


def demo_verdicts(summaries: Mapping) -> dict:
  """{'motion_fidelity', 'akd_ground_truth', 'akd_ground_truth_motion'} (empty without cross-identity)."""
  cross = summaries.get("cross_identity")
  if cross is None:
    return {}
  corr, corr_b = _pair(cross, "motion_correlation")
  ratio, ratio_b = _pair(cross, "apex_ratio")
  akd, akd_b = _pair(cross, "gt_akd")
  aligned, aligned_b = _pair(cross, "gt_akd_aligned")
  not_beaten = "does NOT beat the baseline."
  return {
    # Both parts of motion fidelity must beat the baseline: the pattern (correlation) and the amplitude
    # (apex ratio nearer 1); a model that moves the right way but 100x too much does not pass.
    "motion_fidelity": _verdict(
      bool(P.better("motion_correlation", corr, corr_b))
      and bool(P.better("apex_ratio", ratio, ratio_b)),
      f"motion fidelity: AU keypoint trajectory correlation {corr:.3f} vs {corr_b:.3f} for the "
      f"copy-the-target baseline, apex magnitude ratio {ratio:.3f} vs {ratio_b:.3f} (1 = same "
      "amplitude)",
      "transfers the driving motion better than standing still.",
      "does NOT beat the baseline on both.",
    ),
    "akd_ground_truth": _verdict(
      bool(P.better("gt_akd", akd, akd_b)),
      "AKD against the ground truth (same motion rendered on the held-out identity): "
      f"{akd:.3f} px vs {akd_b:.3f} px for the baseline",
      "is closer to the truth.",
      not_beaten,
    ),
    # The same with each clip's onset landmarks subtracted: a constant offset of the generated face
    # (blur moves dlib's fit by a fraction of a pixel everywhere, which alone can exceed the tiny true
    # motion) cancels.
    "akd_ground_truth_motion": _verdict(
      bool(P.better("gt_akd_aligned", aligned, aligned_b)),
      "AKD of the landmark motion (onset-aligned) against the ground truth: "
      f"{aligned:.3f} px vs {aligned_b:.3f} px for the baseline",
      "moves the landmarks closer to the true motion.",
      not_beaten,
    ),
  }
