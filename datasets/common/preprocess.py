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

from me_fomm_datasets.common import features as F

# Detection works on crops resized to at least this many pixels: dlib's HOG detector does
# not find faces much smaller than 80 px, and a bounded size keeps detection fast.
DETECT_SIZE = 256
# The onset frame is searched whole; large frames (SAMM is 2040x1088) are shrunk first.
FULL_FRAME_DETECT_MAX_SIDE = 640
# PNG compression 1: frames are small, and decoding speed matters more than disk space.
PNG_COMPRESSION = 1
# 'png' is lossless (the default: sub-pixel motion and ground truth stay exact); 'jpeg' at
# quality 95 decodes ~4x faster and is ~4x smaller (CASME II and SAMM ship as JPEG anyway),
# for when the training input pipeline is decode-bound.
FRAME_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 95


class ClipError(ValueError):
  """A clip that cannot be built; the message names the clip and the file at fault."""


@dataclasses.dataclass
class ClipSpec:
  """One clip as an annotation describes it, before any pixel is read.

  `onset`/`apex`/`offset` are absolute frame numbers as annotated (None where missing);
  `frame_numbers[i]` is the number of `frame_paths[i]` (sorted). `problem` carries a defect
  found while parsing the annotation (missing folder, duplicated row): the clip is then
  skipped with that reason, or fails a strict build.
  """

  clip_id: str
  subject: str
  corpus: str
  emotion: str
  label: str
  action_units: str
  frame_paths: list
  frame_numbers: list
  onset: int | None = None
  apex: int | None = None
  offset: int | None = None
  fps: float = 200.0
  where: str = ""  # where the annotation came from, e.g. "CASME2-coding.xlsx row 12"
  problem: str | None = None
  extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ProcessOptions:
  resolution: int = 256
  margin: float = 0.2
  grayscale: bool = False
  frame_format: str = "png"


# ----------------------------------------------------------------------------- images


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


def encode_png(frame: np.ndarray) -> bytes:
  """PNG bytes of uint8 (H, W, 3) RGB or (H, W) gray."""
  img = frame if frame.ndim == 2 else frame[..., ::-1]
  ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
  if not ok:
    raise ValueError(f"could not PNG-encode a frame of shape {frame.shape}")
  return buf.tobytes()


def encode_frame(frame: np.ndarray, frame_format: str = "png") -> bytes:
  """Encoded bytes of uint8 (H, W, 3) RGB or (H, W) gray in one of FRAME_FORMATS."""
  if frame_format == "png":
    return encode_png(frame)
  if frame_format != "jpeg":
    raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got {frame_format!r}.")
  img = frame if frame.ndim == 2 else frame[..., ::-1]
  ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
  if not ok:
    raise ValueError(f"could not JPEG-encode a frame of shape {frame.shape}")
  return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
  """uint8 (H, W, 3) RGB from stored frame bytes (PNG or JPEG; gray comes back as 3 channels)."""
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise ValueError("stored frame is not a decodable image; rebuild the dataset.")
  return img[..., ::-1]


decode_frame = decode_png


def to_gray3(frame: np.ndarray) -> np.ndarray:
  """Grayscale repeated on 3 channels (the seed's mixed model saw SAMM's gray this way)."""
  gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  return np.repeat(gray[..., None], 3, axis=-1)


def square_box(box: Sequence[float], margin: float) -> tuple[float, float, float, float]:
  """Square (x0, y0, x1, y1) around a face box, grown by `margin` of its side on every side
  (the same side as the prior's `crop_box`: longer face side x (1 + 2 margin)).

  Not shifted or clipped to the frame: `crop_region` pads with edge pixels instead, so a face
  near the border stays centred and keeps its scale; `me_fomm.generate.target` crops target
  faces with the same two functions, so training and generation see faces framed alike.
  """
  x0, y0, x1, y1 = (float(v) for v in box)
  side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
  cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
  return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def crop_region(frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
  """The pixels of integer-rounded `box`, padded by edge replication where it leaves the frame
  (a face larger than the frame, or a box from elsewhere)."""
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  h, w = frame.shape[:2]
  pad = max(0, -x0, -y0, x1 - w, y1 - h)
  if pad:
    frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
  return frame[y0 + pad : y1 + pad, x0 + pad : x1 + pad]


def resize(img: np.ndarray, size: int) -> np.ndarray:
  if img.shape[0] == size and img.shape[1] == size:
    return img
  shrink = img.shape[0] > size
  return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def rescale_points(points: np.ndarray, src_size: float, dst_size: float) -> np.ndarray:
  """Pixel coordinates after resizing a square image from src_size to dst_size.

  Pixel centres map as x' = (x + 0.5) * s - 0.5 (the convention cv2.resize uses).
  """
  s = dst_size / src_size
  return ((points + 0.5) * s - 0.5).astype(np.float32)


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
  h, w = frame.shape[:2]
  s = min(1.0, FULL_FRAME_DETECT_MAX_SIDE / max(h, w))
  small = (
    frame
    if s == 1.0
    else cv2.resize(frame, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
  )
  face = detector.detect(small)
  if face is None:
    return None
  return tuple(float(v) / s for v in face.box)


def _landmarks_in_region(detector, region: np.ndarray, out_size: int) -> np.ndarray | None:
  work_size = max(out_size, DETECT_SIZE)
  work = resize(region, work_size)
  face = detector.detect(work)
  if face is None:
    return None
  return rescale_points(np.asarray(face.landmarks, np.float32), work_size, out_size)


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
  crop = square_box(box, options.margin)
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
    region = crop_region(frame, crop)
    lms.append(_landmarks_in_region(crop_detector, region, res))
    small = resize(region, res)
    if options.grayscale:
      small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)  # 1-channel PNG, decoded to 3 channels
    out_frames.append(encode_frame(small, options.frame_format))
  try:
    landmarks, borrowed = borrow_missing(lms)
  except ValueError:
    raise ClipError(
      f"clip {spec.clip_id}: dlib found a face on the full frame but no landmarks "
      "inside the crop of any frame; try a larger --margin."
    ) from None

  return {
    "frames": out_frames,
    "landmarks": landmarks,
    "landmark_borrowed": borrowed,
    "frame_numbers": np.asarray(spec.frame_numbers, np.int32),
    "crop_box": np.asarray(crop, np.float32),
    "subject": spec.subject,
    "clip_id": spec.clip_id,
    "corpus": spec.corpus,
    "emotion": spec.emotion,
    "label": spec.label,
    "action_units": spec.action_units,
    "au_multi_hot": F.au_multi_hot(spec.action_units),
    "onset": onset,
    "apex": apex,
    "offset": offset,
    "apex_estimated": estimated,
    "fps": float(spec.fps),
  }


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
