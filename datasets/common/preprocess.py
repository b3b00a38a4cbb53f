"""Preprocessing shared by every builder: read frames, find the face, crop, landmark, encode.

One clip becomes one example (layout in `features.py`):
1. dlib face detection on the onset frame (highest score); if it finds none, the frames
   nearest the onset are tried in turn, and a clip with no face in any frame is an error.
2. One square crop box for the whole clip (micro-expressions barely move the head, so a
   fixed box keeps the subtle motion in the pixels instead of in a jittering crop).
3. Every frame is cropped (padding with edge pixels where the box leaves the frame),
   resized to the config's resolution and optionally turned to grayscale.
4. 68 dlib landmarks for every frame, found inside the crop (a small image, so detection is
   fast) and stored in crop coordinates of the output resolution. A frame where dlib finds
   no face takes its nearest neighbour's landmarks and is flagged in `landmark_borrowed`.
5. Frames are PNG-encoded one by one, so the loader decodes only the frames it samples.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Sequence

import cv2
import numpy as np

from me_fomm.data import faces, images, vocab

# Image files a corpus folder holds frames in (CASME II and SAMM: jpg, SMIC: bmp, custom: any).
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ClipError(ValueError):
  """A clip that cannot be built; the message names the clip and the file at fault."""


@dataclasses.dataclass
class ClipSpec:
  """One clip as an annotation describes it, before any pixel is read.

  `label` defaults to the class of the annotated `emotion` (`vocab.emotion_to_label`).
  `onset`/`apex`/`offset` are absolute frame numbers as annotated (None where missing);
  `frame_numbers[i]` is the number of `frame_paths[i]` (sorted). `problem` carries a defect
  found while parsing the annotation (missing folder, duplicated row): the clip is then
  skipped with that reason, or fails a strict build.
  """

  clip_id: str
  subject: str
  corpus: str
  emotion: str = ""
  label: str | None = None
  action_units: str = ""
  frame_paths: list = dataclasses.field(default_factory=list)
  frame_numbers: list = dataclasses.field(default_factory=list)
  onset: int | None = None
  apex: int | None = None
  offset: int | None = None
  fps: float = 200.0
  where: str = ""  # where the annotation came from, e.g. "CASME2-coding.xlsx row 12"
  problem: str | None = None
  extra: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.label is None:
      self.label = vocab.emotion_to_label(self.emotion)

  def list_frames(self, folder: str, extensions: Sequence[str] = FRAME_EXTENSIONS) -> None:
    """Sets the frame files (and their numbers) from a folder, or `problem` if they cannot be."""
    try:
      self.frame_paths, self.frame_numbers = numbered_frames(folder, extensions, self.clip_id)
    except ClipError as e:
      self.problem = str(e)


@dataclasses.dataclass
class ProcessOptions:
  resolution: int = 256
  margin: float = 0.2
  grayscale: bool = False
  frame_format: str = "png"


# ----------------------------------------------------------------------------- frames


def read_frame(path: str, clip_id: str = "") -> np.ndarray:
  """uint8 (H, W, 3) RGB from an image file (jpg/png/bmp); grayscale is expanded to 3 channels."""
  where = f"clip {clip_id}: " if clip_id else ""
  if not os.path.isfile(path):
    raise ClipError(f"{where}frame file {path} does not exist.")
  data = np.fromfile(path, dtype=np.uint8)
  img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
  if img is None:
    raise ClipError(
      f"{where}frame file {path} is not a readable image (empty, truncated or "
      "not an image); re-copy it from the corpus or delete the clip's row."
    )
  return np.ascontiguousarray(img[..., ::-1])


def encode_output(frame: np.ndarray, options: ProcessOptions) -> bytes:
  """A face crop as stored: resized to the config's resolution, grayscale if asked (a 1-channel
  image that decodes to 3 equal channels), encoded in its frame format."""
  small = images.resize(frame, options.resolution)
  if options.grayscale:
    small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
  return images.encode_frame(small, options.frame_format)


# ----------------------------------------------------------------------------- clips


def frame_index(numbers: Sequence[int], number: int | None, default: int) -> int:
  """Index of the stored frame whose number is nearest to an annotated frame number."""
  if number is None:
    return default
  arr = np.asarray(numbers)
  return int(np.argmin(np.abs(arr - number)))


def phase_indices(spec: ClipSpec) -> tuple[int, int, int, bool]:
  """(onset, apex, offset, apex_estimated) as indices into the clip's frames.

  A missing onset is the first frame and a missing offset the last; a missing or
  out-of-order apex is the middle of onset and offset and is flagged as estimated.
  """
  n = len(spec.frame_numbers)
  onset = frame_index(spec.frame_numbers, spec.onset, 0)
  offset = frame_index(spec.frame_numbers, spec.offset, n - 1)
  if offset < onset:
    offset = n - 1
  apex, estimated = None, spec.apex is None
  if not estimated:
    apex = frame_index(spec.frame_numbers, spec.apex, 0)
    estimated = not onset <= apex <= offset
  if estimated:
    apex = (onset + offset) // 2
  return onset, apex, offset, bool(estimated)


def _detect_full(detector, frame: np.ndarray):
  """Best face box of a whole frame in frame pixels, shrinking large frames for speed."""
  small, s = faces.shrink_for_detection(frame)
  face = detector.detect(small)
  if face is None:
    return None
  return tuple(float(v) / s for v in face.box)


def process_clip(
  spec: ClipSpec,
  detector,
  options: ProcessOptions,
  read: Callable[[str, str], np.ndarray] = read_frame,
  crop_detector=None,
) -> dict:
  """A clip example (features.clip_features layout) from a ClipSpec. Raises ClipError.

  `detector` searches whole frames (small faces: upsampling helps); `crop_detector`
  (default: `detector`) searches the crops, where the face fills most of the image.
  """
  crop_detector = crop_detector or detector
  if spec.problem:
    raise ClipError(spec.problem)
  if not spec.frame_paths:
    raise ClipError(f"clip {spec.clip_id} ({spec.where}): its folder holds no frames.")
  frames = _LazyFrames(spec.frame_paths, read, spec.clip_id)
  return process_frames(spec, frames, detector, options, crop_detector)


class _LazyFrames:
  """Frames read on access, so a clip never sits whole in memory (a SAMM frame is 6.6 MB)."""

  def __init__(self, paths, read, clip_id):
    self.paths, self._read, self._clip_id = list(paths), read, clip_id

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, i: int) -> np.ndarray:
    return self._read(self.paths[i], self._clip_id)

  def __iter__(self):
    return (self[i] for i in range(len(self)))


def process_frames(
  spec: ClipSpec,
  frames: Sequence[np.ndarray],
  detector,
  options: ProcessOptions,
  crop_detector=None,
) -> dict:
  """`process_clip` on a sequence of uint8 RGB frames (a list, e.g. decoded from a video,
  or frames read on access)."""
  crop_detector = crop_detector or detector
  if not len(frames):
    raise ClipError(f"clip {spec.clip_id} ({spec.where}): no frames.")
  if len(spec.frame_numbers) != len(frames):
    raise ClipError(
      f"clip {spec.clip_id}: {len(frames)} frames but {len(spec.frame_numbers)} frame numbers."
    )
  where = os.path.dirname(spec.frame_paths[0]) if spec.frame_paths else spec.where
  onset, apex, offset, estimated = phase_indices(spec)

  # Face on the onset frame, else on the frames nearest to it.
  order = sorted(range(len(frames)), key=lambda i: (abs(i - onset), i))
  box = None
  for i in order:
    box = _detect_full(detector, frames[i])
    if box is not None:
      break
  if box is None:
    raise ClipError(
      f"clip {spec.clip_id}: no face found in any of its {len(frames)} frames ({where})."
    )
  crop = images.square_box(box, options.margin)
  res = options.resolution

  out_frames, lms, first_shape = [], [], None
  for t, frame in enumerate(frames):
    first_shape = first_shape or frame.shape
    if frame.shape != first_shape:
      name = spec.frame_paths[t] if t < len(spec.frame_paths) else f"frame {t}"
      raise ClipError(
        f"clip {spec.clip_id}: {name} is {frame.shape[1]}x{frame.shape[0]} but "
        f"the clip's first frame is {first_shape[1]}x{first_shape[0]} ({where}); "
        "all frames of a clip must have one size."
      )
    region = images.crop_region(frame, crop)
    lms.append(faces.landmarks_in_region(crop_detector, region, res))
    out_frames.append(encode_output(region, options))
  try:
    landmarks, borrowed = faces.borrow_missing(lms)
  except ValueError:
    raise ClipError(
      f"clip {spec.clip_id}: dlib found a face on the full frame but no landmarks "
      "inside the crop of any frame; try a larger --margin."
    ) from None

  return clip_record(
    spec,
    out_frames,
    landmarks,
    onset,
    apex,
    offset,
    borrowed=borrowed,
    frame_numbers=np.asarray(spec.frame_numbers, np.int32),
    crop_box=np.asarray(crop, np.float32),
    apex_estimated=estimated,
  )


def clip_record(
  spec: ClipSpec,
  frames,
  landmarks,
  onset: int,
  apex: int,
  offset: int,
  *,
  borrowed=None,
  frame_numbers=None,
  crop_box=None,
  apex_estimated: bool = False,
  **fields,
) -> dict:
  """One clip record in the layout of `features.clip_features` (DESIGN.md "Records"): the spec's
  metadata, the encoded frames and their landmarks; `fields` override or extend the spec's fields.
  A clip that is not a crop of a recorded video has no borrowed landmarks, frames numbered 0.. and
  a zero crop box."""
  t = len(frames)
  record = {
    "frames": frames,
    "landmarks": landmarks,
    "landmark_borrowed": np.zeros((t,), np.bool_) if borrowed is None else borrowed,
    "frame_numbers": np.arange(t, dtype=np.int32) if frame_numbers is None else frame_numbers,
    "crop_box": np.zeros((4,), np.float32) if crop_box is None else crop_box,
    "subject": spec.subject,
    "clip_id": spec.clip_id,
    "corpus": spec.corpus,
    "emotion": spec.emotion,
    "label": spec.label,
    "action_units": spec.action_units,
    "onset": int(onset),
    "apex": int(apex),
    "offset": int(offset),
    "apex_estimated": bool(apex_estimated),
    "fps": float(spec.fps),
  }
  record.update(fields)
  record["au_multi_hot"] = vocab.au_multi_hot(record["action_units"])
  return record


def numbered_frames(folder: str, extensions: Sequence[str], clip_id: str = "") -> tuple[list, list]:
  """(paths, numbers) of the image files in a folder, sorted by the last number in each name.

  CASME II names frames `img46.jpg`, SAMM `006_05562.jpg`, SMIC `image000123.bmp`: in each the
  last run of digits is the absolute frame number.
  """
  items = []
  for name in os.listdir(folder):
    if os.path.splitext(name)[1].lower() not in extensions:
      continue
    digits = re.findall(r"(\d+)", os.path.splitext(name)[0])
    if not digits:
      raise ClipError(
        f"clip {clip_id}: frame file {os.path.join(folder, name)} has no frame number in its name."
      )
    items.append((int(digits[-1]), os.path.join(folder, name)))
  items.sort()
  nums = [n for n, _ in items]
  if len(set(nums)) != len(nums):
    raise ClipError(f"clip {clip_id}: two frame files in {folder} carry the same frame number.")
  return [p for _, p in items], nums
