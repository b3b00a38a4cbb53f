"""Relative motion transfer (`normalize_kp` of FOMM's animate.py) with motion magnification.

Relative transfer moves the source keypoints by the driving clip's displacement from its initial frame,
    value    = kp_S + s * alpha * (kp_D - kp_D0)
    jacobian = (I + alpha (J_D J_D0^{-1} - I)) J_S
where s = sqrt(area(hull(kp_S)) / area(hull(kp_D0))) with adapt_movement_scale, else 1, and alpha the
magnification factor (new here: micro-expressions are often too subtle to see; alpha = 1 is the original),
one for all keypoints or one per keypoint (alpha_k = 0 holds keypoint k at the source's: region control).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.model import geometry


def convex_hull_area(points) -> float:
  """Area of the convex hull of (N, 2) points (Andrew's monotone chain + shoelace), NumPy, outside jit.

  Matches scipy's ConvexHull(points).volume in 2-D; 0 for fewer than three non-collinear points.
  """
  p = np.asarray(points, np.float64)
  if p.ndim != 2 or p.shape[1] != 2:
    raise ValueError(f"convex_hull_area: points must be (N, 2), got {p.shape}")
  pts = sorted(set(map(tuple, p)))
  if len(pts) < 3:
    return 0.0

  def cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

  lower, upper = [], []
  for q in pts:
    while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
      lower.pop()
    lower.append(q)
  for q in reversed(pts):
    while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
      upper.pop()
    upper.append(q)
  hull = np.array(lower[:-1] + upper[:-1])
  x, y = hull[:, 0], hull[:, 1]
  return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(kp_source, kp_driving_initial) -> np.ndarray:
  """(B,) sqrt(hull area of kp_source / hull area of kp_driving_initial), per sample (NumPy, outside jit).

  The original uses sample 0's areas for the whole batch; per sample is the same for the batch of one it
  animates with and correct for larger batches.
  """
  src = np.asarray(kp_source["value"])
  ini = np.asarray(kp_driving_initial["value"])
  out = []
  for s, i in zip(src, ini):
    a_i = convex_hull_area(i)
    if a_i <= 0:
      raise ValueError(
        "movement_scale: the initial driving keypoints are collinear (zero hull area); "
        "use adapt_movement_scale=False"
      )
    out.append(np.sqrt(convex_hull_area(s)) / np.sqrt(a_i))
  return np.asarray(out, np.float32)


def normalize_kp(
  kp_source,
  kp_driving,
  kp_driving_initial,
  adapt_movement_scale=False,
  use_relative_movement=True,
  use_relative_jacobian=True,
  magnify=1.0,
):
  """Keypoints for animating the source with the driving frame's motion relative to the initial frame.

  Args:
    kp_source, kp_driving, kp_driving_initial: {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}.
    adapt_movement_scale: False, True (hull areas computed here with NumPy, so not under jit) or the scale
      itself (a float or (B,) array, e.g. from `movement_scale`, which works under jit).
    use_relative_movement / use_relative_jacobian: as the original (without relative movement the driving
      keypoints are returned unchanged).
    magnify: alpha, the factor on the displacement and on the Jacobian's departure from identity: a number,
      or (K,) per keypoint.

  Returns:
    New keypoints {'value', 'jacobian'} (float32).
  """
  if adapt_movement_scale is True:
    if isinstance(kp_source["value"], jax.core.Tracer):
      raise ValueError(
        "normalize_kp: adapt_movement_scale=True needs concrete keypoints (hull areas in NumPy);"
        " under jit pass adapt_movement_scale=movement_scale(kp_source, kp_driving_initial)"
      )
    scale = jnp.asarray(movement_scale(kp_source, kp_driving_initial))
  elif adapt_movement_scale is False or adapt_movement_scale is None:
    scale = jnp.float32(1.0)
  else:
    scale = jnp.asarray(adapt_movement_scale, jnp.float32)
  scale = jnp.reshape(scale, (-1, 1, 1)) if jnp.ndim(scale) else scale
  kp_new = dict(kp_driving)
  alpha = jnp.asarray(magnify, jnp.float32)
  alpha = alpha[:, None] if alpha.ndim else alpha  # (K, 1) against (B, K, 2)
  if use_relative_movement:
    diff = (kp_driving["value"] - kp_driving_initial["value"]).astype(jnp.float32)
    kp_new["value"] = kp_source["value"].astype(jnp.float32) + alpha * scale * diff
    if use_relative_jacobian and "jacobian" in kp_driving:
      jd = geometry.matmul_2x2(
        kp_driving["jacobian"].astype(jnp.float32),
        geometry.inverse_2x2(kp_driving_initial["jacobian"].astype(jnp.float32)),
      )
      eye = jnp.eye(2, dtype=jnp.float32)
      jd = eye + alpha[..., None] * (jd - eye)
      kp_new["jacobian"] = geometry.matmul_2x2(jd, kp_source["jacobian"].astype(jnp.float32))
  return kp_new
