"""One decoded clip, whatever it came from: the type generation and evaluation work on.

`Clip.from_record` decodes a stored record (the layout of `datasets/common/features.py`, as a
`me_fomm.data.sources` source returns it); `read_corpus_clip` finds a record by its name in a
prepared dataset. Files and frame folders become clips in `me_fomm.generate.driving`.

Conventions: frames are uint8 (T, H, W, 3) RGB, as stored; landmarks are float32 (T, 68, 2)
dlib pixels of those frames. Resizing moves frames and landmarks together (`resized`), with the
rules of `me_fomm.data.images` that the training pairs use too.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from me_fomm.data import images, shards, vocab


@dataclasses.dataclass
class Clip:
  """A decoded clip: frames plus whatever is known about them.

  Attributes:
    frames: uint8 (T, H, W, 3) RGB.
    fps: frames per second.
    name: a short name for output files (file stem, folder name or corpus clip id).
    landmarks: optional float32 (T, 68, 2) dlib landmarks in pixels of `frames`.
    onset: index of the onset frame (the neutral frame the motion starts from).
    apex, offset: indices of the apex and offset frames, or None when unknown.
    label: class name (`me_fomm.data.vocab.LABELS`) when known (corpus clips), else None.
    action_units: the FACS action units coded for the clip, as numbers (e.g. (4, 7)).
    ground_truth: optional uint8 (T, H, W, 3): the same motion on another identity (synthetic_me).
    ground_truth_landmarks: optional float32 (T, 68, 2) landmarks of `ground_truth` (exact).
    corpus, clip_id, subject: where a corpus clip came from ('' for files).
    landmark_driven: the motion is in `landmarks` alone and `frames` are the still target (a clip made from
      FACS action units, `me_fomm.generate.driving.AuMotion`): the animator reads only the landmarks.
  """

  frames: np.ndarray
  fps: float
  name: str
  landmarks: np.ndarray | None = None
  onset: int = 0
  apex: int | None = None
  offset: int | None = None
  label: str | None = None
  action_units: tuple[int, ...] = ()
  ground_truth: np.ndarray | None = None
  ground_truth_landmarks: np.ndarray | None = None
  corpus: str = ""
  clip_id: str = ""
  subject: str = ""
  landmark_driven: bool = False

  def __len__(self) -> int:
    return int(self.frames.shape[0])

  @classmethod
  def from_record(cls, record: dict, image_size: int | None = None) -> "Clip":
    """A stored clip record -> Clip (frames decoded, label as its class name, AUs as numbers).

    `image_size` resizes the (square) frames, the ground truth and their landmarks to that size.
    """
    subject = _as_str(record.get("subject", ""))
    clip_id = _as_str(record.get("clip_id", ""))
    # Some corpora's ids already carry the subject (CASME II: 'sub01/EP02_01f').
    name = clip_id if not subject or clip_id.startswith(subject) else f"{subject}_{clip_id}"
    gt = record.get("ground_truth_frames")
    gt_lms = record.get("ground_truth_landmarks")
    lms = record.get("landmarks")
    label = record.get("label")
    with shards.decoding(record, "its frames"):
      frames = decode_frames(record["frames"])
      gt = decode_frames(gt) if gt is not None and len(gt) else None
    clip = cls(
      frames=frames,
      fps=float(record.get("fps", 25.0) or 25.0),
      name=name.replace("/", "_"),
      landmarks=None if lms is None else np.asarray(lms, np.float32),
      onset=int(record.get("onset", 0)),
      apex=_index(record.get("apex")),
      offset=_index(record.get("offset")),
      label=None if label is None else vocab.label_name(label),
      action_units=tuple(vocab.parse_action_units(record.get("action_units"))),
      ground_truth=gt,
      ground_truth_landmarks=None if gt_lms is None else np.asarray(gt_lms, np.float32),
      corpus=_as_str(record.get("corpus", "")),
      clip_id=clip_id,
      subject=subject,
    )
    return clip if image_size is None else clip.resized(image_size)

  def resized(self, size: int) -> "Clip":
    """This clip at size x size: frames and ground truth resized (area down, bilinear up) with
    their landmarks rescaled to match (`me_fomm.data.images.resize_with_points`)."""
    frames, lms = images.resize_with_points(self.frames, self.landmarks, size)
    gt, gt_lms = self.ground_truth, self.ground_truth_landmarks
    if gt is not None:
      gt, gt_lms = images.resize_with_points(gt, gt_lms, size)
    return dataclasses.replace(
      self, frames=frames, landmarks=lms, ground_truth=gt, ground_truth_landmarks=gt_lms
    )


def decode_frames(frames) -> np.ndarray:
  """Stored frames (encoded PNG/JPEG bytes, or decoded uint8 (H, W, 3) arrays) -> uint8 (T, H, W, 3)."""
  if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4:
    return frames
  return np.stack(
    [
      images.decode_frame(bytes(f)) if isinstance(f, (bytes, np.bytes_)) else np.asarray(f)
      for f in frames
    ]
  )


def _index(value) -> int | None:
  return None if value is None else int(value)


def _as_str(value) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.shape == ():
    return _as_str(value.item())
  return str(value)


# ------------------------------------------------------------------------------- corpus clips


def parse_corpus_spec(spec: str) -> tuple[str, str] | None:
  """`casme2:sub01/EP02_01f` -> ('casme2', 'sub01/EP02_01f'); None when `spec` is not of that form.

  A Windows drive letter (`C:\\...`) or an existing path is never taken for a corpus clip.
  """
  if ":" not in spec or os.path.exists(spec):
    return None
  corpus, clip = spec.split(":", 1)
  if len(corpus) <= 1 or not clip or not re.fullmatch(r"[A-Za-z0-9_/.\-]+", corpus):
    return None
  return corpus, clip


def _clip_matches(record: dict, wanted: str) -> bool:
  subject = _as_str(record.get("subject", ""))
  clip_id = _as_str(record.get("clip_id", ""))
  return wanted in (clip_id, f"{subject}/{clip_id}")


def read_corpus_clip(corpus: str, clip: str, data_dir: str, image_size: int | None = None) -> Clip:
  """Finds `clip` (`subject/clip_id` or just `clip_id`) in a prepared dataset and decodes it.

  Looks in the test, train and validation splits, in that order. Raises ValueError naming what
  was searched when the clip is in none of them.
  """
  if not data_dir:
    raise ValueError(
      f"corpus clip {corpus}:{clip}: no data_dir given (the folder `me-fomm prepare` wrote the "
      "TFDS records to)"
    )
  from me_fomm.data import sources

  tried = []
  for split in ("test", "train", "validation"):
    try:
      source = sources.load(corpus, data_dir, split)
    except Exception as e:  # a split that was not prepared is not an error while others remain
      tried.append(f"{split}: {e}")
      continue
    for i in range(len(source)):
      record = source[i]
      if _clip_matches(record, clip):
        return Clip.from_record(record, image_size)
  raise ValueError(
    f"corpus clip {clip!r} not found in {corpus!r} under {data_dir!r} "
    f"(give it as subject/clip_id, e.g. sub01/EP02_01f). Looked in: "
    + ("; ".join(tried) if tried else "every prepared split")
  )
