"""Fit the AU motion model from a FACS-coded corpus: ridge regression of apex-minus-onset landmark motion.

Per coded clip, the apex frame's 68 landmarks are aligned onto the onset frame's by the least-squares
similarity transform (Umeyama 1991) of the landmarks no AU moves (`STILL`: the nose bridge, the inner eye
corners, the top of the jaw contour), which removes the head's own motion; the difference is expressed in
the onset frame's face frame in inter-ocular distances (`au_motion.to_face`). With X the clips' AU codes
(multi-hot, N x A) and Y their displacements (N x 136), the patterns are the ridge solution

    W = (X^T X + lambda I)^-1 X^T Y            (no intercept: no AU, no motion)

so a clip's motion is modelled as the sum of its AUs' patterns at intensity 1 (the codes' intensity letters
are rarely given; an AU's pattern is its mean contribution). The held-out error is measured with folds of
whole subjects: each fold's patterns are fitted without its subjects and predict their clips.

The envelope is the corpus's typical timing: the median onset-to-offset duration and the median position of
the apex in it (clips with onset < apex < offset and a frame rate).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from me_fomm.prior import au_motion

# Landmarks no default pattern moves (tests/prior/test_au_motion.py checks it): the alignment's anchors.
STILL = (0, 16, 27, 28, 29, 30, 39, 42)


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(M, t) with dst ~ src @ M.T + t: the least-squares rotation+scale+translation (no reflection)."""
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  mu_s, mu_d = src.mean(0), dst.mean(0)
  a, b = src - mu_s, dst - mu_d
  cov = b.T @ a / len(src)
  u, sv, vt = np.linalg.svd(cov)
  d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
  var = (a * a).sum() / len(src)
  m = (np.trace(np.diag(sv) @ d) / var) * (u @ d @ vt)
  return m, mu_d - mu_s @ m.T


def apex_displacement(onset_px, apex_px) -> np.ndarray:
  """(68, 2) apex-minus-onset motion in the onset's face frame, in IODs, head motion removed."""
  onset = np.asarray(onset_px, np.float64)
  apex = np.asarray(apex_px, np.float64)
  m, t = similarity(apex[list(STILL)], onset[list(STILL)])
  return au_motion.to_face(apex @ m.T + t - onset, onset)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
  """(A, D) ridge regression weights of y (N, D) on x (N, A), no intercept."""
  a = x.shape[1]
  return np.linalg.solve(x.T @ x + lam * np.eye(a), x.T @ y)


def _folds(subjects: Sequence[str], k: int) -> list[np.ndarray]:
  distinct = sorted(set(subjects))
  k = min(k, len(distinct))
  fold_of = {s: i % k for i, s in enumerate(distinct)}
  return [np.array([fold_of[s] == f for s in subjects]) for f in range(k)]


def held_out_error(x, y, subjects, lam: float, folds: int) -> dict:
  """Mean landmark error (IODs) of subject-held-out predictions, beside predicting no motion."""
  if len(set(subjects)) < 2:
    return {"folds": 0, "note": "one subject only: no held-out error"}
  pred = np.zeros_like(y)
  masks = _folds(subjects, folds)
  for held in masks:
    pred[held] = x[held] @ ridge(x[~held], y[~held], lam)
  err = np.linalg.norm((y - pred).reshape(len(y), -1, 2), axis=-1).mean(-1)
  zero = np.linalg.norm(y.reshape(len(y), -1, 2), axis=-1).mean(-1)
  return {
    "folds": len(masks),
    "held_out_error": float(err.mean()),
    "zero_motion_error": float(zero.mean()),
    "explained": float(1.0 - ((y - pred) ** 2).sum() / max((y**2).sum(), 1e-30)),
  }


def typical_timing(timings: Sequence[tuple[int, int, int, float]]) -> dict:
  """Median duration (ms) and apex fraction of (onset, apex, offset, fps) tuples; {} if none usable."""
  ok = [(on, ap, off, fps) for on, ap, off, fps in timings if on < ap < off and fps and fps > 0]
  if not ok:
    return {}
  return {
    "duration_ms": float(np.median([(off - on) / fps * 1000.0 for on, _, off, fps in ok])),
    "apex_fraction": float(np.median([(ap - on) / (off - on) for on, ap, off, _ in ok])),
    "timed_clips": len(ok),
  }


def fit(
  displacements: np.ndarray,
  codes: Sequence[Sequence[int]],
  subjects: Sequence[str],
  lam: float = 0.1,
  min_clips: int = 3,
  folds: int = 5,
  timings: Sequence[tuple[int, int, int, float]] = (),
  source: str = "fit",
) -> au_motion.AUModel:
  """The AU model of coded clips.

  Args:
    displacements: (N, 68, 2) `apex_displacement` of each clip.
    codes: each clip's AUs (numbers).
    subjects: each clip's subject (folds hold whole subjects out).
    lam: ridge strength (in clips: an AU coded in n clips is shrunk by n / (n + lam)).
    min_clips: AUs coded in fewer clips get no pattern (their clips still count, for the others).
    folds: subject folds for the held-out error.
    timings: (onset, apex, offset, fps) per clip, for the envelope.

  Returns:
    An AUModel with patterns in IODs (scale 1) and `fit` = counts, ridge, held-out error, timing.
  """
  y = np.asarray(displacements, np.float64)
  if y.ndim != 3 or y.shape[1:] != (au_motion.NUM_LANDMARKS, 2) or len(y) != len(codes):
    raise ValueError(
      f"au_fit.fit: need (N, 68, 2) displacements and N codes, got {y.shape} and {len(codes)}"
    )
  if not lam >= 0:
    raise ValueError(f"--ridge must be >= 0, got {lam}")
  counts = {}
  for c in codes:
    for a in set(c):
      counts[int(a)] = counts.get(int(a), 0) + 1
  aus = sorted(a for a, n in counts.items() if n >= min_clips)
  if not aus:
    raise ValueError(
      f"no action unit is coded in at least {min_clips} clip(s) of the {len(codes)} usable clips "
      f"(counts: {dict(sorted(counts.items())) or 'none'}); lower --min_clips or use a larger corpus"
    )
  x = np.array([[float(a in set(c)) for a in aus] for c in codes])
  flat = y.reshape(len(y), -1)
  w = ridge(x, flat, lam)
  timing = typical_timing(timings)
  report = {
    "clips": int(len(y)),
    "subjects": len(set(subjects)),
    "ridge": float(lam),
    "counts": {str(a): counts[a] for a in aus},
    "left_out": {str(a): n for a, n in sorted(counts.items()) if a not in aus},
    **held_out_error(x, flat, list(subjects), lam, folds),
    **timing,
  }
  return au_motion.AUModel(
    patterns={a: w[i].reshape(au_motion.NUM_LANDMARKS, 2) for i, a in enumerate(aus)},
    scale=1.0,
    duration_ms=timing.get("duration_ms", au_motion.DEFAULT_DURATION_MS),
    apex_fraction=timing.get("apex_fraction", au_motion.DEFAULT_APEX_FRACTION),
    source=source,
    fit=report,
  )
