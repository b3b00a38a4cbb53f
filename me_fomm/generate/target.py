"""The target face: find it in any photo and crop it exactly as the training clips were cropped.

The crop rules are the corpus preprocessing's (`me_fomm.data.images` and `me_fomm.data.faces`, which
`datasets/common/preprocess.py` uses too): dlib's face box on the frame (frames larger than 640 px are shrunk
for detection), a square box grown by `margin` (0.2) of the face side on every side, edge-replicated where it
leaves the photo, resized to the model's resolution; dlib's 68 landmarks are then found again inside the crop
(at >= 256 px) and stored in crop pixels. A model sees a target framed like its training faces, which
matters: FOMM's keypoints are learned for that framing.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from me_fomm.data import faces, images
from me_fomm.prior.landmarks import NoFaceError

__all__ = ["NoFaceError", "Target", "prepare_target", "prepare_clip_frames", "landmarks_in_crop"]

DEFAULT_MARGIN = 0.2


@dataclasses.dataclass
class Target:
  """A prepared target: uint8 (S, S, 3) RGB (like clip frames; the animator converts it to float), dlib
  landmarks (68, 2) float32 in its pixels (or None)."""

  image: np.ndarray
  landmarks: np.ndarray | None
  box: tuple[float, float, float, float] | None  # crop box in the photo's pixels; None with no_crop
  faces_found: int


def _face_area(face) -> float:
  x0, y0, x1, y1 = face.box
  return float(max(0.0, x1 - x0) * max(0.0, y1 - y0))


def _faces_full(detector, photo: np.ndarray) -> list:
  """Faces of a whole photo with boxes and landmarks in the photo's pixels (large photos shrunk)."""
  import cv2

  small, s = faces.shrink_for_detection(photo)
  # Upscale small photos: the HOG detector misses faces below about 80 px.
  up = max(1.0, faces.DETECT_SIZE / min(small.shape[:2]))
  if up > 1.0:
    small = cv2.resize(
      small,
      (int(round(small.shape[1] * up)), int(round(small.shape[0] * up))),
      interpolation=cv2.INTER_LINEAR,
    )
  scale = s * up
  return [
    dataclasses.replace(
      f,
      box=tuple(float(v) / scale for v in f.box),
      landmarks=np.asarray(f.landmarks, np.float32) / scale,
    )
    for f in detector.faces(small)
  ]


def landmarks_in_crop(detector, crop: np.ndarray) -> np.ndarray | None:
  """dlib's 68 landmarks of the face in a square crop, in the crop's pixels, or None."""
  return faces.landmarks_in_region(detector, crop, crop.shape[0])


def _detector(detector, needed: bool):
  if detector is None and needed:
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  return detector


def prepare_target(
  photo: np.ndarray,
  image_size: int,
  crop: bool = True,
  detector=None,
  need_landmarks: bool = True,
  margin: float = DEFAULT_MARGIN,
  where: str = "target",
  log: logging.Logger | None = None,
) -> Target:
  """Finds, crops and resizes the target face.

  Args:
    photo: uint8 (H, W, 3) RGB.
    image_size: the model's resolution S.
    crop: False for an already aligned face crop (only resized to S x S).
    detector: a `me_fomm.prior.landmarks.LandmarkDetector` (built when None and needed).
    need_landmarks: the model uses facial-prior keypoints, so the crop must have landmarks.
    margin: crop margin (fraction of the face side per side), as in training.
    where: name of the input for messages.

  Raises:
    NoFaceError: no face in the photo (suggests --no_crop), or no landmarks when they are needed.
  """
  log = log or logging.getLogger(__name__)
  photo = np.asarray(photo)
  if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
    raise ValueError(
      f"{where}: expected a uint8 (H, W, 3) RGB photo, got {photo.dtype} {photo.shape}"
    )
  detector = _detector(detector, crop or need_landmarks)
  box = None
  n_faces = 0
  if crop:
    found = _faces_full(detector, photo)
    n_faces = len(found)
    if not found:
      raise NoFaceError(
        f"{where}: dlib found no face in the photo ({photo.shape[1]}x{photo.shape[0]} px). Use a "
        "photo with a clearly visible frontal face, or pass --no_crop if it is already an aligned "
        "face crop (it is then only resized)."
      )
    # Several faces: the largest is the subject (ties: the detector's best score, which comes first).
    face = max(found, key=_face_area)
    if len(found) > 1:
      log.warning(
        "%s: dlib found %d faces; using the largest, box %s (pass a photo with one face "
        "or crop it yourself with --no_crop to choose another).",
        where,
        len(found),
        tuple(int(round(v)) for v in face.box),
      )
    box = images.square_box(face.box, margin)
    region = images.crop_region(photo, box)
  else:
    region = images.centre_square(photo)
  image = images.resize(region, image_size)
  landmarks = None
  if need_landmarks:
    landmarks = landmarks_in_crop(detector, images.resize(region, max(image_size, region.shape[0])))
    if landmarks is not None and region.shape[0] != image_size:
      landmarks = images.rescale_points(landmarks, max(image_size, region.shape[0]), image_size)
    if landmarks is None:
      raise NoFaceError(
        f"{where}: dlib found no facial landmarks in the "
        + ("cropped face" if crop else "image (--no_crop)")
        + "; this model places its keypoints on the 68 landmarks, so it needs a visible frontal "
        "face" + ("" if crop else " (drop --no_crop to let dlib find and crop it)") + "."
      )
  return Target(image=np.array(image, np.uint8), landmarks=landmarks, box=box, faces_found=n_faces)


def prepare_clip_frames(
  frames: np.ndarray,
  image_size: int,
  crop: bool = True,
  detector=None,
  need_landmarks: bool = True,
  reference: int = 0,
  margin: float = DEFAULT_MARGIN,
  where: str = "driving clip",
) -> tuple[np.ndarray, np.ndarray | None]:
  """Crops a driving clip like a training clip: one box for the whole clip, from the reference frame.

  Returns (uint8 (T, S, S, 3), landmarks (T, 68, 2) in crop pixels or None). Frames where dlib finds no
  landmarks borrow their nearest neighbour's (as the corpus preprocessing does).
  """
  frames = np.asarray(frames)
  detector = _detector(detector, crop or need_landmarks)
  if crop:
    order = sorted(range(len(frames)), key=lambda i: (abs(i - reference), i))
    face = None
    for i in order[: min(len(order), 5)]:
      found = _faces_full(detector, frames[i])
      if found:
        face = max(found, key=_face_area)
        break
    if face is None:
      raise NoFaceError(
        f"{where}: dlib found no face in the frames around frame {reference}. Pass a clip showing a "
        "frontal face, or --no_crop if its frames are already aligned face crops."
      )
    box = images.square_box(face.box, margin)
    regions = [images.crop_region(f, box) for f in frames]
  else:
    regions = [images.centre_square(f) for f in frames]
  out = np.stack([images.resize(r, image_size) for r in regions])
  landmarks = None
  if need_landmarks:
    found = [landmarks_in_crop(detector, f) for f in out]
    try:
      landmarks, _ = faces.borrow_missing(found)
    except ValueError:
      raise NoFaceError(
        f"{where}: dlib found no facial landmarks in any frame; the facial-prior model "
        "needs them" + (" (drop --no_crop to let dlib crop the face)" if not crop else "")
      ) from None
  return out, landmarks
