"""Micro-expression-like motion on a still face photo, with exactly known landmarks.

A clip is an action-unit pattern (a displacement of some of dlib's 68 landmarks, expressed in
the face's own frame: x along the eye line, y down), an intensity curve (neutral, onset, apex,
offset, neutral) and a small head jitter (translation + rotation about the face centre). The
patterns, the face frame, the class prototypes and the intensity curve are the library's AU
motion model (`me_fomm.prior.au_motion`, `me_fomm.prior.au_patterns`).

Rendering is a backward warp with cv2.remap. The displacement field D is a Gaussian radial
basis function interpolant (Hardy/Micchelli-style scattered-data interpolation): weights w
solve (K + lambda I) w = d over the 68 landmarks (moving or still) plus still anchors on the
border, and D(x) = sum_j exp(-|x - p_j|^2 / (2 sigma^2)) w_j. Because D is linear in the
displacements, the field of the unit-intensity pattern is computed once per clip and scaled
per frame.

Landmarks of every rendered frame are KNOWN from the motion, so no dlib runs per synthetic
frame (dlib runs once per identity, on the still photo): output pixel x shows the photo at
y - D(y) with y = A^-1 x (A the jitter), so photo point p appears where q - D(q) = p, i.e.
at q = p + D(q), solved by a few fixed-point steps (D moves by at most a few pixels and is
smooth, so the iteration contracts), then x = A q.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from me_fomm.prior import au_motion
from me_fomm.prior.au_patterns import CLASS_AUS

LABELS = ("negative", "positive", "surprise")


def pattern_displacement(aus, landmarks: np.ndarray) -> np.ndarray:
  """(68, 2) unit displacement (max norm 1) of an AU combination on a face's landmarks, in pixel
  directions of that face (its eye line sets the axes, so a tilted face moves consistently).

  The patterns and the face frame are the library's AU motion model (`me_fomm.prior.au_motion`,
  default patterns written from FACS), so generation from AU codes and these clips share one
  definition; the renderer draws the apex amplitude itself (`Motion.amplitude_px256`)."""
  local = au_motion.default_model().combine(aus)
  local /= max(np.linalg.norm(local, axis=1).max(), 1e-9)
  return au_motion.to_image(local, landmarks)


@dataclasses.dataclass
class Motion:
  """Everything about a clip's motion that does not depend on the identity."""

  aus: tuple
  emotion: str
  label: str
  amplitude_px256: float  # landmark displacement at the apex, in pixels of a 256x256 crop
  intensity: np.ndarray  # (T,) in [0, 1]
  onset: int
  apex: int
  offset: int
  jitter: np.ndarray  # (T, 3): dx, dy (pixels at 256) and rotation (degrees)


def sample_motion(
  rng: np.random.Generator,
  label: str,
  num_frames: int,
  amplitude=(1.0, 4.0),
  jitter_px: float = 0.4,
  jitter_deg: float = 0.25,
) -> Motion:
  """A random motion of class `label`: onset after 1-3 still frames, apex at 35-55% of the
  movement, back to neutral at the offset (raised-cosine ramps), and low-frequency jitter."""
  if num_frames < 6:
    raise ValueError(f"a synthetic clip needs at least 6 frames, got {num_frames}.")
  options = CLASS_AUS[label]
  aus, emotion = options[rng.integers(len(options))]
  t = num_frames
  onset = int(rng.integers(1, min(3, t // 4) + 1))
  offset = int(t - 1 - rng.integers(0, min(2, t // 6) + 1))
  apex = int(round(onset + (offset - onset) * rng.uniform(0.35, 0.55)))
  apex = min(max(apex, onset + 1), offset - 1)
  intensity = au_motion.envelope(t, onset, apex, offset)
  idx = np.arange(t, dtype=np.float64)
  # Jitter: two random sinusoids per component, periods longer than the clip's half-length.
  phase = idx / t
  jitter = np.zeros((t, 3))
  for c, amp in enumerate((jitter_px, jitter_px, jitter_deg)):
    for _ in range(2):
      f, p, a = rng.uniform(0.3, 1.5), rng.uniform(0, 2 * np.pi), rng.uniform(-amp, amp) / 2
      jitter[:, c] += a * (np.sin(2 * np.pi * f * phase + p) - np.sin(p))  # zero at frame 0
  return Motion(
    aus=aus,
    emotion=emotion,
    label=label,
    amplitude_px256=float(rng.uniform(*amplitude)),
    intensity=intensity,
    onset=onset,
    apex=apex,
    offset=offset,
    jitter=jitter,
  )


def _border_anchors(size: int, per_side: int = 8) -> np.ndarray:
  s = np.linspace(0, size - 1, per_side)
  z, e = np.zeros_like(s), np.full_like(s, size - 1)
  return np.concatenate(
    [np.stack([s, z], 1), np.stack([s, e], 1), np.stack([z, s], 1), np.stack([e, s], 1)]
  )


class RbfField:
  """Gaussian RBF displacement field through given point displacements (see module doc)."""

  def __init__(
    self, points: np.ndarray, displacements: np.ndarray, sigma: float, reg: float = 1e-3
  ):
    self.points, self.sigma = points.astype(np.float64), float(sigma)
    k = self._kernel(self.points)
    self.weights = np.linalg.solve(k + reg * np.eye(len(k)), displacements.astype(np.float64))

  def _kernel(self, x: np.ndarray) -> np.ndarray:
    d2 = ((x[:, None, :] - self.points[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * self.sigma**2))

  def __call__(self, x: np.ndarray) -> np.ndarray:
    return self._kernel(x.reshape(-1, 2)) @ self.weights

  def grid(self, size: int) -> np.ndarray:
    """(size, size, 2) field at every pixel. The Gaussian kernel is separable, so
    D(x, y) = sum_j gy_j(y) gx_j(x) w_j is two small matrix products per channel."""
    axis = np.arange(size, dtype=np.float64)
    gx = np.exp(-((axis[None, :] - self.points[:, :1]) ** 2) / (2 * self.sigma**2))  # (N, S)
    gy = np.exp(-((axis[None, :] - self.points[:, 1:]) ** 2) / (2 * self.sigma**2))
    return np.stack([(gy.T * self.weights[:, c]) @ gx for c in range(2)], axis=-1)


def _jitter_matrix(jitter_row: np.ndarray, center: np.ndarray, size: int) -> np.ndarray:
  """2x3 forward affine of the head jitter (rotation about the face centre + translation)."""
  scale = size / 256.0
  m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(jitter_row[2]), 1.0)
  m[:, 2] += jitter_row[:2] * scale
  return m


def render_clip(
  image: np.ndarray, landmarks: np.ndarray, motion: Motion, sigma_frac: float = 0.045
) -> tuple[list, np.ndarray]:
  """Frames (uint8 (S,S,3) list) and landmarks ((T,68,2) float32 px) of `motion` on a square
  face crop `image` with its 68 `landmarks`."""
  size = image.shape[0]
  disp = pattern_displacement(motion.aus, landmarks) * motion.amplitude_px256 * size / 256.0
  anchors = _border_anchors(size)
  field = RbfField(
    np.concatenate([landmarks, anchors]),
    np.concatenate([disp, np.zeros_like(anchors)]),
    sigma=sigma_frac * size,
  )
  unit = field.grid(size).astype(np.float32)
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
  center = landmarks.mean(0)
  frames, lms = [], []
  for t, a in enumerate(motion.intensity):
    m = _jitter_matrix(motion.jitter[t], center, size)
    minv = cv2.invertAffineTransform(m).astype(np.float32)
    # y = A^-1 x for every output pixel x, then sample the photo at y - a D(y).
    yx = minv[0, 0] * xs + minv[0, 1] * ys + minv[0, 2]
    yy = minv[1, 0] * xs + minv[1, 1] * ys + minv[1, 2]
    if a > 0:
      d = cv2.remap(unit, yx, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
      yx, yy = yx - a * d[..., 0], yy - a * d[..., 1]
    frames.append(
      cv2.remap(
        image,
        yx.astype(np.float32),
        yy.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
      )
    )
    q = landmarks.astype(np.float64)
    for _ in range(4):  # q = p + a D(q), a contraction for smooth, small D
      q = landmarks + a * field(q)
    lms.append(q @ m[:, :2].T + m[:, 2])
  return frames, np.asarray(lms, np.float32)
