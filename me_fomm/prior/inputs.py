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

from me_fomm.prior.au_keypoints import NUM_LANDMARKS, au_px_to_value, landmarks_to_au

PRIOR_FRAMES = ("onset", "per_frame")


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
