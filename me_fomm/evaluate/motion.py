"""Motion fidelity: does the generated face move where, when and how much the driving face moves?

Micro-expressions are small local motions (a brow raise, a lip-corner pull), so pixel metrics against another
identity say little. Instead we follow the 18 AU keypoints of the facial prior (Facial-Prior-Based FOMM,
Zhang et al., ACM MM 2021: points on the brows, eyes, nose and mouth that the AUs of FACS move) through both
clips and compare their trajectories:

1. AU keypoints a_t (T, 18, 2) from dlib's 68 landmarks per frame (`prior.au_keypoints.landmarks_to_au`).
2. Displacement from the onset (reference) frame, with the clip-wide head translation removed (the mean over
   all keypoints of the displacement), so a head shift is not counted as expression:
       d_t,k = (a_t,k - a_0,k) - mean_k (a_t,k - a_0,k)
3. Scale normalisation: divide by the face size s = the inter-ocular distance of the onset frame (outer eye
   corners, landmarks 36 and 45), so faces of different size and image resolution compare.
4. Correlation: Pearson correlation between the driving and the generated displacement fields over all
   frames, keypoints and both axes (flattened (T*18*2) vectors). 1 = the same motion pattern; 0 = unrelated;
   a clip that does not move has no variance and scores 0.
5. Apex magnitude ratio: at the driving clip's apex frame (given, else the frame of largest mean driving
   displacement), mean_k |d_gen| / mean_k |d_drv|. 1 = the same amplitude; 0 = no motion; >1 exaggerated.

Frames where dlib finds no face in either clip are dropped from both.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# dlib 68-point indices of the outer eye corners (iBUG 300-W annotation: 36 right-eye outer, 45 left-eye outer).
OUTER_EYE_CORNERS = (36, 45)


def face_scale(landmarks_68: np.ndarray) -> float:
  """Inter-ocular distance (outer eye corners) of one (68, 2) landmark set, in pixels."""
  lm = np.asarray(landmarks_68, np.float64)
  if lm.shape != (68, 2):
    raise ValueError(f"face_scale needs dlib's (68, 2) landmarks, got {lm.shape}")
  return float(np.linalg.norm(lm[OUTER_EYE_CORNERS[0]] - lm[OUTER_EYE_CORNERS[1]]))


def displacements(points: np.ndarray, reference: int = 0, scale: float | None = None) -> np.ndarray:
  """Scale-normalised, translation-free displacements d_t,k (see the module doc) of (T, K, 2) points."""
  p = np.asarray(points, np.float64)
  if p.ndim != 3 or p.shape[-1] != 2:
    raise ValueError(f"displacements needs (T, K, 2) points, got {p.shape}")
  d = p - p[reference]
  d = d - d.mean(axis=1, keepdims=True)
  if scale is not None:
    if not scale > 0:
      raise ValueError(f"face scale must be positive, got {scale}")
    d = d / scale
  return d


def correlation(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson correlation of two flattened arrays; 0 when either has no variance (a still clip)."""
  x = np.asarray(a, np.float64).ravel()
  y = np.asarray(b, np.float64).ravel()
  if x.shape != y.shape:
    raise ValueError(f"correlation: sizes differ {x.shape} vs {y.shape}")
  x = x - x.mean()
  y = y - y.mean()
  den = np.sqrt((x * x).sum() * (y * y).sum())
  if den <= 1e-12:
    return 0.0
  return float((x * y).sum() / den)


@dataclasses.dataclass
class MotionFidelity:
  correlation: float
  apex_ratio: float
  apex_index: int
  driving_apex_magnitude: float  # mean |d| at the apex, in face-scale units
  generated_apex_magnitude: float
  frames_used: int

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def motion_fidelity(
  driving_au: np.ndarray,
  generated_au: np.ndarray,
  driving_scale: float,
  generated_scale: float,
  apex: int | None = None,
  reference: int = 0,
) -> MotionFidelity:
  """Compares AU keypoint trajectories (T, K, 2) of a driving and a generated clip.

  Args:
    driving_au, generated_au: AU keypoints per frame (pixels of each clip); NaN rows = no face.
    driving_scale, generated_scale: face sizes (`face_scale`) of each clip's reference frame.
    apex: index of the driving apex frame in the full clip, or None to take the frame of largest motion.
    reference: index of the onset (reference) frame; must have a face in both clips.
  """
  d = np.asarray(driving_au, np.float64)
  g = np.asarray(generated_au, np.float64)
  if d.shape != g.shape or d.ndim != 3:
    raise ValueError(
      f"motion_fidelity: need two (T, K, 2) arrays of one shape, got {d.shape}, {g.shape}"
    )
  ok = np.isfinite(d).all(axis=(1, 2)) & np.isfinite(g).all(axis=(1, 2))
  if not ok[reference]:
    raise ValueError(
      "motion_fidelity: no face found in the reference (onset) frame of "
      + ("the driving clip" if not np.isfinite(d[reference]).all() else "the generated clip")
    )
  idx = np.flatnonzero(ok)
  ref = int(np.searchsorted(idx, reference))
  dd = displacements(d[idx], ref, driving_scale)
  gd = displacements(g[idx], ref, generated_scale)
  mag_d = np.linalg.norm(dd, axis=-1).mean(axis=1)  # (F,)
  mag_g = np.linalg.norm(gd, axis=-1).mean(axis=1)
  if apex is not None and ok[apex]:
    a = int(np.searchsorted(idx, apex))
  else:
    a = int(np.argmax(mag_d))
  ratio = float(mag_g[a] / mag_d[a]) if mag_d[a] > 1e-12 else float("nan")
  return MotionFidelity(
    correlation=correlation(dd, gd),
    apex_ratio=ratio,
    apex_index=int(idx[a]),
    driving_apex_magnitude=float(mag_d[a]),
    generated_apex_magnitude=float(mag_g[a]),
    frames_used=int(idx.size),
  )


def motion_fidelity_from_landmarks(
  driving_68: np.ndarray, generated_68: np.ndarray, apex: int | None = None, reference: int = 0
) -> MotionFidelity:
  """`motion_fidelity` from dlib 68-landmark tracks (T, 68, 2) of both clips."""
  from me_fomm.prior.au_keypoints import landmarks_to_au

  d = np.asarray(driving_68, np.float64)
  g = np.asarray(generated_68, np.float64)
  for name, lm in (("driving", d), ("generated", g)):
    if not np.isfinite(lm[reference]).all():
      raise ValueError(f"motion_fidelity: no face found in the reference frame of the {name} clip")
  return motion_fidelity(
    np.asarray(landmarks_to_au(d), np.float64),
    np.asarray(landmarks_to_au(g), np.float64),
    face_scale(d[reference]),
    face_scale(g[reference]),
    apex=apex,
    reference=reference,
  )
