"""Where dlib looks for a face and its landmarks: the rules the corpus build and the generation
targets share, so that a target face is found and landmarked as the training faces were.

`detector` is anything with `detect(rgb_uint8) -> face or None` whose face has `box`
(x0, y0, x1, y1) and `landmarks` (68, 2) in that image's pixels
(`me_fomm.prior.landmarks.LandmarkDetector`, or a stand-in in tests).
"""

from __future__ import annotations

import cv2
import numpy as np

from me_fomm.data.images import rescale_points, resize

# Detection works on crops resized to at least this many pixels: dlib's HOG detector does
# not find faces much smaller than 80 px, and a bounded size keeps detection fast.
DETECT_SIZE = 256
# A whole frame is searched at most this large; larger frames (SAMM is 2040x1088) are shrunk.
FULL_FRAME_DETECT_MAX_SIDE = 640


def shrink_for_detection(frame: np.ndarray) -> tuple[np.ndarray, float]:
  """(frame shrunk so its longer side is at most FULL_FRAME_DETECT_MAX_SIDE, the scale used)."""
  h, w = frame.shape[:2]
  s = min(1.0, FULL_FRAME_DETECT_MAX_SIDE / max(h, w))
  if s == 1.0:
    return frame, s
  return cv2.resize(frame, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA), s


def landmarks_in_region(detector, region: np.ndarray, out_size: int) -> np.ndarray | None:
  """dlib's 68 landmarks of the face in a square region, in pixels of the region resized to
  out_size x out_size (detected at >= DETECT_SIZE px), or None when no face is found."""
  work_size = max(out_size, DETECT_SIZE)
  face = detector.detect(resize(region, work_size))
  if face is None:
    return None
  return rescale_points(np.asarray(face.landmarks, np.float32), work_size, out_size)


def borrow_missing(landmarks: list) -> tuple[np.ndarray, np.ndarray]:
  """Fills None entries with the nearest frame's landmarks (earlier frame on ties).

  Returns ((T, 68, 2) float32, (T,) bool borrowed). Raises ValueError if all are None.
  """
  have = [i for i, lm in enumerate(landmarks) if lm is not None]
  if not have:
    raise ValueError("no frame has landmarks")
  out, borrowed = [], np.zeros((len(landmarks),), np.bool_)
  for i, lm in enumerate(landmarks):
    if lm is None:
      j = min(have, key=lambda k: (abs(k - i), k))
      lm, borrowed[i] = landmarks[j], True
    out.append(lm)
  return np.stack(out).astype(np.float32), borrowed
