"""The target face: find it in any photo and crop it exactly as the training clips were cropped.

The crop rules are the corpus preprocessing's (`me_fomm_datasets.common.preprocess`): dlib's face box on the
frame (frames larger than 640 px are shrunk for detection), a square box grown by `margin` (0.2) of the face
side on every side, edge-replicated where it leaves the photo, resized to the model's resolution; dlib's 68
landmarks are then found again inside the crop (at >= 256 px) and stored in crop pixels. A model sees a target
framed like its training faces, which matters: FOMM's keypoints are learned for that framing.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from me_fomm.prior.landmarks import NoFaceError
from me_fomm_datasets.common import preprocess

__all__ = ["NoFaceError", "Target", "prepare_target", "prepare_clip_frames", "landmarks_in_crop"]

DEFAULT_MARGIN = 0.2


@dataclasses.dataclass
class Target:
  """A prepared target: float32 (S, S, 3) in [0, 1], dlib landmarks (68, 2) in its pixels (or None)."""

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

  h, w = photo.shape[:2]
  s = min(1.0, preprocess.FULL_FRAME_DETECT_MAX_SIDE / max(h, w))
  small = (
    photo
    if s == 1.0
    else cv2.resize(photo, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
  )
  # Upscale small photos: the HOG detector misses faces below about 80 px.
  up = max(1.0, preprocess.DETECT_SIZE / min(small.shape[:2]))
  if up > 1.0:
    small = cv2.resize(
      small,
      (int(round(small.shape[1] * up)), int(round(small.shape[0] * up))),
      interpolation=cv2.INTER_LINEAR,
    )
  scale = s * up
  faces = detector.faces(small)
  return [
    dataclasses.replace(
      f,
      box=tuple(float(v) / scale for v in f.box),
      landmarks=np.asarray(f.landmarks, np.float32) / scale,
    )
    for f in faces
  ]


def landmarks_in_crop(detector, crop: np.ndarray) -> np.ndarray | None:
  """dlib's 68 landmarks of the face in a square crop, in the crop's pixels, or None."""
  size = crop.shape[0]
  work_size = max(size, preprocess.DETECT_SIZE)
  work = preprocess.resize(crop, work_size)
  face = detector.detect(work)
  if face is None:
    return None
  return preprocess.rescale_points(np.asarray(face.landmarks, np.float32), work_size, size)


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
  if detector is None and (crop or need_landmarks):
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  box = None
  n_faces = 0
  if crop:
    faces = _faces_full(detector, photo)
    n_faces = len(faces)
    if not faces:
      raise NoFaceError(
        f"{where}: dlib found no face in the photo ({photo.shape[1]}x{photo.shape[0]} px). Use a "
        "photo with a clearly visible frontal face, or pass --no_crop if it is already an aligned "
        "face crop (it is then only resized)."
      )
    # Several faces: the largest is the subject (ties: the detector's best score, which comes first).
    face = max(faces, key=_face_area)
    if len(faces) > 1:
      log.warning(
        "%s: dlib found %d faces; using the largest, box %s (pass a photo with one face "
        "or crop it yourself with --no_crop to choose another).",
        where,
        len(faces),
        tuple(int(round(v)) for v in face.box),
      )
    box = preprocess.square_box(face.box, margin)
    region = preprocess.crop_region(photo, box)
  else:
    region = photo
    h, w = region.shape[:2]
    if h != w:
      # Centre square crop: a non-square "aligned" image would otherwise be squashed.
      side = min(h, w)
      y0, x0 = (h - side) // 2, (w - side) // 2
      region = region[y0 : y0 + side, x0 : x0 + side]
  image = preprocess.resize(region, image_size)
  landmarks = None
  if need_landmarks:
    landmarks = landmarks_in_crop(
      detector, preprocess.resize(region, max(image_size, region.shape[0]))
    )
    if landmarks is not None and region.shape[0] != image_size:
      landmarks = preprocess.rescale_points(landmarks, max(image_size, region.shape[0]), image_size)
    if landmarks is None:
      raise NoFaceError(
        f"{where}: dlib found no facial landmarks in the "
        + ("cropped face" if crop else "image (--no_crop)")
        + "; this model places its keypoints on the 68 landmarks, so it needs a visible frontal "
        "face" + ("" if crop else " (drop --no_crop to let dlib find and crop it)") + "."
      )
  return Target(
    image=image.astype(np.float32) / 255.0, landmarks=landmarks, box=box, faces_found=n_faces
  )


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
  if detector is None and (crop or need_landmarks):
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  if crop:
    order = sorted(range(len(frames)), key=lambda i: (abs(i - reference), i))
    face = None
    for i in order[: min(len(order), 5)]:
      faces = _faces_full(detector, frames[i])
      if faces:
        face = max(faces, key=_face_area)
        break
    if face is None:
      raise NoFaceError(
        f"{where}: dlib found no face in the frames around frame {reference}. Pass a clip showing a "
        "frontal face, or --no_crop if its frames are already aligned face crops."
      )
    box = preprocess.square_box(face.box, margin)
    regions = [preprocess.crop_region(f, box) for f in frames]
  else:
    regions = list(frames)
    h, w = frames.shape[1:3]
    if h != w:
      side = min(h, w)
      y0, x0 = (h - side) // 2, (w - side) // 2
      regions = [f[y0 : y0 + side, x0 : x0 + side] for f in frames]
  out = np.stack([preprocess.resize(r, image_size) for r in regions])
  landmarks = None
  if need_landmarks:
    found = [landmarks_in_crop(detector, f) for f in out]
    try:
      landmarks, _ = preprocess.borrow_missing(found)
    except ValueError:
      raise NoFaceError(
        f"{where}: dlib found no facial landmarks in any frame; the facial-prior model "
        "needs them" + (" (drop --no_crop to let dlib crop the face)" if not crop else "")
      ) from None
  return out, landmarks
