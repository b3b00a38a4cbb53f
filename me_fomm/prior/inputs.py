"""The keypoint detector's `prior` input from dlib landmarks: which frame's AU keypoints each pass gets.

Training (`train.step`), generation (`generate.animate`), personalisation (`generate.personalize`) and the
benchmarks all build the prior here, so the rule of the model config's `prior_frames` lives in one place:

* 'onset' (the MEGC2021 seed): every frame of a clip gets the AU keypoints of the clip's onset frame: in
  training both passes (source and driving frame), in generation every driving frame. The seed's kpmaker.py
  writes one keypoint file per clip, from its first frame, and its training and animate.py read that file
  for every frame; with relative motion the keypoint values then stay put and the Jacobians (and the image
  under the region mask) carry the motion.
* 'per_frame' (tip24): every frame gets its own AU keypoints.

Values are in the seed's convention px * 2 / S - 1 (`au_keypoints.au_px_to_value`). NumPy in, NumPy out;
JAX in (also traced under jit), JAX out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.prior import au_motion
from me_fomm.prior.au_keypoints import NUM_LANDMARKS, au_px_to_value, landmarks_to_au

PRIOR_FRAMES = ("onset", "per_frame")
# Neighbourhood of a keypoint in `landmark_jacobians`, in inter-ocular distances (between the eye centres,
# `au_motion.inter_ocular`): a little more than the spacing of the brow or lip landmarks, so a keypoint's
# local motion is its feature's, not the whole face's.
JACOBIAN_SIGMA = 0.25
# Ridge toward the identity, in units of sigma^2 (the weighted landmark spread is about that): where the
# neighbours are nearly collinear (a brow) the map across them stays the identity, and elsewhere the fit's
# departure from the identity is shrunk by about half. Measured with the demo checkpoint (tip24, 400 steps)
# on synthetic_me's held-out clips: its own Jacobians barely leave the identity (median |J_t J_0^-1 - I|
# 0.006-0.009 at the apex) and do not follow the landmarks' local strain (correlation about 0), so the
# unshrunk fit (ridge 0.01) pushed the generator out of what it was trained on (motion in the hair and the
# collar): AKD to the ground truth 0.178 px, against 0.145 with 1.0 and 0.150 with identity Jacobians, at
# about the same motion correlation (0.41, 0.40, 0.37). The same order held on training-split clips the
# choice was not made on (AKD 0.176, 0.139, 0.143; correlation 0.33, 0.39, 0.33).
JACOBIAN_RIDGE = 1.0


def keypoint_prior(model_cfg, landmarks_px, onset_px) -> dict | None:
  """The keypoint detector's `prior` for frames with the dlib landmarks `landmarks_px`.

  Args:
    model_cfg: the model config (reads `kp_mode`, `prior_frames`, `image_size`).
    landmarks_px: (..., 68, 2) pixels (x, y) of the frames, one set per frame.
    onset_px: the landmarks of the clip's onset frame, of the same shape or (68, 2) for all frames alike;
      a still photo (a generation target) is its own onset.

  Returns:
    None for learned keypoints (`kp_mode='learned'`; the landmarks are not read and may be None), else
    {'value': (..., 18, 2) float32 in [-1, 1]}.
  """
  if model_cfg.kp_mode != "prior":
    return None
  frames = model_cfg.prior_frames
  if frames not in PRIOR_FRAMES:
    raise ValueError(f"model config: prior_frames={frames!r} is not one of {PRIOR_FRAMES}")
  if landmarks_px is None or onset_px is None:
    raise ValueError(
      "this model uses facial-prior keypoints (kp_mode='prior'): pass the frames' dlib landmarks "
      "(..., 68, 2) px and those of the clip's onset frame"
    )
  shape = tuple(np.shape(landmarks_px))
  if shape[-2:] != (NUM_LANDMARKS, 2):
    raise ValueError(
      f"keypoint_prior: landmarks must be (..., {NUM_LANDMARKS}, 2) pixels (x, y), got shape {shape}"
    )
  xp = jnp if isinstance(landmarks_px, jax.Array) or isinstance(onset_px, jax.Array) else np
  source = onset_px if frames == "onset" else landmarks_px
  value = au_px_to_value(landmarks_to_au(xp.asarray(source, xp.float32)), model_cfg.image_size)
  return {"value": xp.broadcast_to(value, shape[:-2] + value.shape[-2:])}


def follows_landmarks(model_cfg) -> bool:
  """Whether a model's keypoints move with each frame's landmarks (tip24's per-frame prior keypoints), so a
  landmark track alone can drive it (AU-driven generation); `seed` keeps the onset's keypoints and takes the
  motion from the driving image, `fomm` learns its keypoints from the image."""
  return model_cfg.kp_mode == "prior" and model_cfg.prior_frames == "per_frame"


def landmark_jacobians(
  landmarks_px, reference_px, sigma: float = JACOBIAN_SIGMA, ridge: float = JACOBIAN_RIDGE
) -> np.ndarray:
  """(..., 18, 2, 2) local affine maps of the landmark motion reference -> frame at each AU keypoint.

  FOMM's keypoint Jacobian is the first-order (affine) approximation of the motion around a keypoint, and in
  relative transfer it enters as J_driving J_initial^-1, the local affine map from the reference frame to
  the driving frame. Without a driving image we take that map from the landmarks: per keypoint c (of the
  reference frame), the weighted least-squares affine fit q ~ A p + b of the frame's landmarks q to the
  reference's p, weights exp(-|p - c|^2 / (2 s^2)) with s = `sigma` inter-ocular distances, ridge-regularised
  toward A = I by `ridge` s^2. Identity where nothing moves; as `ridge` -> 0, exact for any affine motion of
  the whole face (the default shrinks it toward I, see JACOBIAN_RIDGE).

  Args:
    landmarks_px: (..., 68, 2) pixels of the frames.
    reference_px: (68, 2) pixels of the reference (onset) frame.

  Returns float32 (NumPy; the animator calls it on the host, once per clip).
  """
  p = np.asarray(reference_px, np.float64)
  q = np.asarray(landmarks_px, np.float64)
  if p.shape != (NUM_LANDMARKS, 2) or q.shape[-2:] != (NUM_LANDMARKS, 2):
    raise ValueError(
      f"landmark_jacobians: need (..., 68, 2) frame and (68, 2) reference landmarks, got {q.shape} "
      f"and {p.shape}"
    )
  s = sigma * au_motion.inter_ocular(p)
  if not s > 0:
    raise ValueError("landmark_jacobians: the reference landmarks have no eye distance")
  centres = np.asarray(landmarks_to_au(p), np.float64)  # (18, 2)
  w = np.exp(-((p[None] - centres[:, None]) ** 2).sum(-1) / (2 * s * s))  # (18, 68)
  w = w / w.sum(-1, keepdims=True)
  mean_p = w @ p  # (18, 2)
  dp = p[None] - mean_p[:, None]  # (18, 68, 2)
  cov = np.einsum("kn,kni,knj->kij", w, dp, dp) + ridge * s * s * np.eye(2)
  d = q - p  # (..., 68, 2) displacements
  mean_d = np.einsum("kn,...nc->...kc", w, d)
  dd = d[..., None, :, :] - mean_d[..., :, None, :]  # (..., 18, 68, 2)
  cross = np.einsum("kn,...kni,knj->...kij", w, dd, dp)
  return (np.eye(2) + cross @ np.linalg.inv(cov)).astype(np.float32)
