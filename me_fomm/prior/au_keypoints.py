"""dlib's 68 facial landmarks -> the 18 action-unit (AU) keypoints of the facial prior.

The MEGC2021 winner ("Facial Prior Based First Order Motion Model for Micro-expression Generation", Zhang et
al., ACM MM 2021) replaces FOMM's learned keypoints by 18 points placed where facial action units move the
skin. Its `cropped.feature_generator` takes 12 of dlib's 68 landmarks as they are and derives 6 more by
pushing landmarks out by half the inner eye-corner distance d = x(42) - x(39):

    index  landmark  shift              roughly
    0..11  19 24 27 38 41 43 46 48 54 55 57 59   (as they are: brows, nose root, eyelids, mouth)
    12     31        x - d/2            left nostril wing (AU9/AU10)
    13     35        x + d/2            right nostril wing
    14     41        y + d/2            below the (image-)left eye, cheek (AU6)
    15     46        y + d/2            below the (image-)right eye, cheek
    16     48        x - d/2            outside the left mouth corner (AU12/AU14)
    17     54        x + d/2            outside the right mouth corner

All indices are 0-based, dlib/iBUG-300W order. Coordinates are pixels (x, y), last axis (x, y).

The functions here work on NumPy and JAX arrays with any leading batch dimensions and are jit-able.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

NUM_LANDMARKS = 68
NUM_AU_KEYPOINTS = 18

# Named ranges of the 68-point (iBUG 300-W) layout. "Right"/"left" are the subject's: the subject's right
# brow (17..21) appears on the image's left.
JAW = np.arange(0, 17)
RIGHT_BROW = np.arange(17, 22)
LEFT_BROW = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSE_BOTTOM = np.arange(31, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
OUTER_LIPS = np.arange(48, 60)
INNER_LIPS = np.arange(60, 68)

# Single points used by the AU construction.
RIGHT_EYE_INNER_CORNER = 39
LEFT_EYE_INNER_CORNER = 42

# The 18 landmarks the AU keypoints start from, in the seed's order (two ascending passes over 0..67, see the
# module docstring), and the shift of each, in units of the inner eye-corner distance d.
AU_LANDMARK_INDICES = np.array(
  [19, 24, 27, 38, 41, 43, 46, 48, 54, 55, 57, 59, 31, 35, 41, 46, 48, 54], dtype=np.int32
)
AU_SHIFT = np.zeros((NUM_AU_KEYPOINTS, 2), dtype=np.float32)
AU_SHIFT[12, 0] = -0.5  # 31: x - d/2
AU_SHIFT[13, 0] = +0.5  # 35: x + d/2
AU_SHIFT[14, 1] = +0.5  # 41: y + d/2
AU_SHIFT[15, 1] = +0.5  # 46: y + d/2
AU_SHIFT[16, 0] = -0.5  # 48: x - d/2
AU_SHIFT[17, 0] = +0.5  # 54: x + d/2
AU_SHIFT.setflags(write=False)


# Face regions, for moving or amplifying only part of a face (`--regions`): the landmarks of each and the AU
# keypoints built from them. The jaw and chin contour belongs to the mouth (it moves with the jaw and the
# chin raiser), its upper part to the cheeks, with the two cheek keypoints below the eyes.
REGIONS = {
  "brows": (np.r_[17:27], (0, 1)),
  "eyes": (np.r_[36:48], (3, 4, 5, 6)),
  "nose": (np.r_[27:36], (2, 12, 13)),
  "cheeks": (np.r_[0:4, 13:17], (14, 15)),
  "mouth": (np.r_[48:68, 4:13], (7, 8, 9, 10, 11, 16, 17)),
}


def parse_regions(names) -> tuple[str, ...]:
  """'mouth,brows' or ['mouth', 'brows'] -> ('mouth', 'brows'); ValueError listing REGIONS otherwise."""
  if isinstance(names, str):
    names = names.split(",")
  out = tuple(dict.fromkeys(n.strip().lower() for n in names if n and n.strip()))
  unknown = [n for n in out if n not in REGIONS]
  if unknown or not out:
    raise ValueError(
      f"--regions: unknown region(s) {', '.join(unknown) or '(none given)'}; choose from "
      f"{', '.join(REGIONS)} (comma-separated, e.g. --regions=mouth,brows)"
    )
  return out


def region_landmarks(names) -> np.ndarray:
  """Sorted indices of the 68 landmarks in the named regions."""
  return np.unique(np.concatenate([REGIONS[n][0] for n in parse_regions(names)]))


def region_keypoints(names) -> np.ndarray:
  """(18,) bool: which AU keypoints lie in the named regions."""
  keep = np.zeros((NUM_AU_KEYPOINTS,), bool)
  for n in parse_regions(names):
    keep[list(REGIONS[n][1])] = True
  return keep


def _mirror_68() -> np.ndarray:
  """Index of each landmark's left/right counterpart (the iBUG 68-point symmetry)."""
  pairs = []
  pairs += [(i, 16 - i) for i in range(8)]  # jaw 0..16 around the chin (8)
  pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
  pairs += [(31, 35), (32, 34)]  # nose bottom; 33 and the bridge 27..30 map to themselves
  pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
  pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips; 51, 57 fixed
  pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips; 62, 66 fixed
  perm = np.arange(NUM_LANDMARKS, dtype=np.int32)
  for a, b in pairs:
    perm[a], perm[b] = b, a
  return perm


# MIRROR_68[i] is the landmark that lands on point i's semantic slot after a horizontal flip.
MIRROR_68 = _mirror_68()
MIRROR_68.setflags(write=False)

# The same for the 18 AU keypoints: landmarks_to_au(mirror_landmarks(lm)) == mirror_au(landmarks_to_au(lm)).
MIRROR_AU = np.array([1, 0, 2, 5, 6, 3, 4, 8, 7, 11, 10, 9, 13, 12, 15, 14, 17, 16], dtype=np.int32)
MIRROR_AU.setflags(write=False)


def _is_jax(x: Any) -> bool:
  return isinstance(x, jax.Array)  # also true for tracers under jit/grad/vmap


def _as_float_array(points: Any, name: str, num_points: int):
  """Returns (xp, array) with a floating dtype; checks the trailing (num_points, 2) shape."""
  xp = jnp if _is_jax(points) else np
  arr = xp.asarray(points)
  if arr.ndim < 2 or arr.shape[-2:] != (num_points, 2):
    raise ValueError(
      f"{name}: expected an array of shape (..., {num_points}, 2) (pixel x, y per point), got shape "
      f"{tuple(arr.shape)}. "
      + (
        "dlib's 68-point shape predictor gives 68 landmarks; pass all of them."
        if num_points == NUM_LANDMARKS
        else f"Pass the {num_points} AU keypoints from landmarks_to_au."
      )
    )
  if not xp.issubdtype(arr.dtype, xp.floating):
    arr = arr.astype(xp.float32)
  return xp, arr


def landmarks_to_au(landmarks_px):
  """The seed's 18 AU keypoints from dlib's 68 landmarks.

  Args:
    landmarks_px: (..., 68, 2) pixels (x, y), NumPy or JAX array (integer inputs become float32).

  Returns:
    (..., 18, 2) pixels (x, y), same array library as the input, floating dtype of the input (or float32).
  """
  xp, lm = _as_float_array(landmarks_px, "landmarks_to_au(landmarks_px)", NUM_LANDMARKS)
  if xp is np and not np.all(np.isfinite(lm)):
    raise ValueError(
      "landmarks_to_au(landmarks_px): the landmarks contain NaN or inf; check the detector output."
    )
  base = lm[..., AU_LANDMARK_INDICES, :]
  # d = x(42) - x(39), the inner eye-corner distance: the face's scale in the seed's construction.
  d = lm[..., LEFT_EYE_INNER_CORNER, 0] - lm[..., RIGHT_EYE_INNER_CORNER, 0]
  shift = xp.asarray(AU_SHIFT, dtype=lm.dtype)
  return base + d[..., None, None] * shift


def _mirror(points_px, width: int, perm: np.ndarray, name: str, arg: str):
  """Points of the horizontally flipped frame: x -> width - 1 - x, each point in its counterpart's slot."""
  if int(width) != width or width <= 0:
    raise ValueError(
      f"{name}: width must be a positive integer (frame width in pixels), got {width!r}."
    )
  xp, pts = _as_float_array(points_px, f"{name}({arg})", len(perm))
  flipped = pts[..., perm, :]
  return xp.stack([(width - 1) - flipped[..., 0], flipped[..., 1]], axis=-1)


def mirror_landmarks(landmarks_px, width: int):
  """Landmarks of the horizontally flipped frame (`frame[:, ::-1]`), relabelled left <-> right.

  Pixel column x goes to width - 1 - x (dlib's coordinates are pixel indices), and each point takes its
  counterpart's slot so that, e.g., index 19 stays "the subject's right brow" after the flip.

  Args:
    landmarks_px: (..., 68, 2) pixels (x, y), NumPy or JAX.
    width: width of the frame in pixels.
  """
  return _mirror(landmarks_px, width, MIRROR_68, "mirror_landmarks", "landmarks_px")


def mirror_au(au_px, width: int):
  """AU keypoints of the horizontally flipped frame (the AU analogue of `mirror_landmarks`)."""
  return _mirror(au_px, width, MIRROR_AU, "mirror_au", "au_px")


def au_px_to_value(au_px, image_size: int = 256):
  """Pixel AU keypoints -> the keypoint detector's `value` in [-1, 1], exactly as the seed: px * 2 / S - 1.

  Note the seed divides by S (not S - 1 as the project's coordinate grid does); checkpoints trained with the
  seed expect this, so we keep it.
  """
  xp = jnp if _is_jax(au_px) else np
  return xp.asarray(au_px) * (2.0 / image_size) - 1.0


def value_to_au_px(value, image_size: int = 256):
  """Inverse of `au_px_to_value`: (value + 1) * S / 2."""
  xp = jnp if _is_jax(value) else np
  return (xp.asarray(value) + 1.0) * (image_size / 2.0)
