"""The one feature layout every micro-expression builder writes (see DESIGN.md, Data).

Kept in one place so that CASME II, SAMM, SMIC, MEGC, the synthetic corpus and custom clips
are read by the same Grain pipeline. Only feature types that TFDS can encode and decode
without TensorFlow are used (`Tensor`, `Scalar`, `Text`, `ClassLabel`, `Sequence` of bytes
tensors) together with `file_format='array_record'`.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow_datasets as tfds

# Three-class MEGC2019 labelling (Composite Database Evaluation), plus `other` for the
# emotions that the composite protocol drops but single-corpus builders keep.
LABELS = ("negative", "positive", "surprise", "other")

# Emotion words as they are spelled in the CASME II / SAMM / SMIC annotations -> three classes.
# MEGC2019: negative = anger, contempt, disgust, sadness, fear (SAMM) and disgust, repression
# (CASME II); positive = happiness; surprise = surprise. SMIC already uses these names.
EMOTION_TO_LABEL = {
  "anger": "negative",
  "contempt": "negative",
  "disgust": "negative",
  "sadness": "negative",
  "fear": "negative",
  "repression": "negative",
  "negative": "negative",
  "happiness": "positive",
  "positive": "positive",
  "surprise": "surprise",
}

# Action units that occur in CASME II and SAMM codings; the multi-hot vector has one slot each.
AU_VOCAB = (
  1,
  2,
  4,
  5,
  6,
  7,
  9,
  10,
  11,
  12,
  13,
  14,
  15,
  16,
  17,
  18,
  20,
  21,
  22,
  23,
  24,
  25,
  26,
  27,
  28,
  31,
  38,
  39,
  43,
  45,
  61,
  62,
  63,
  64,
)
_AU_INDEX = {au: i for i, au in enumerate(AU_VOCAB)}
NUM_LANDMARKS = 68


def emotion_to_label(emotion: str) -> str:
  """Maps an annotated emotion to negative/positive/surprise, anything else to `other`."""
  return EMOTION_TO_LABEL.get(emotion.strip().lower(), "other")


def parse_action_units(text) -> list[int]:
  """AU numbers in a coding cell such as '4+7', 'AU4+AU7', 'R12+L14A', '12?' or 6 (int).

  Side (L/R) prefixes, intensity suffixes (A-E) and question marks are ignored: the
  multi-hot vector says which units moved, not how strongly or on which side.
  """
  if text is None:
    return []
  if isinstance(text, (int, float)) and not isinstance(text, bool):
    return [int(text)]
  return sorted({int(n) for n in re.findall(r"(\d+)", str(text))})


def au_multi_hot(text) -> np.ndarray:
  """(len(AU_VOCAB),) bool; units outside AU_VOCAB are left out of the vector (kept in text)."""
  out = np.zeros((len(AU_VOCAB),), np.bool_)
  for au in parse_action_units(text):
    if au in _AU_INDEX:
      out[_AU_INDEX[au]] = True
  return out


def _bytes_sequence():
  # A variable-length list of encoded images. `Image`/`Video` features need TensorFlow to
  # encode/decode; a Sequence of scalar object (bytes) tensors round-trips without it, and
  # the loader then decodes only the frames it samples.
  return tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_))


def clip_features(ground_truth: bool = False) -> tfds.features.FeaturesDict:
  """FeaturesDict of one clip. `ground_truth` adds synthetic_me's identity and truth frames."""
  feats = {
    "frames": _bytes_sequence(),
    "landmarks": tfds.features.Tensor(shape=(None, NUM_LANDMARKS, 2), dtype=np.float32),
    "landmark_borrowed": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
    "frame_numbers": tfds.features.Tensor(shape=(None,), dtype=np.int32),
    "crop_box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
    "subject": tfds.features.Text(),
    "clip_id": tfds.features.Text(),
    "corpus": tfds.features.Text(),
    "emotion": tfds.features.Text(),
    "label": tfds.features.ClassLabel(names=LABELS),
    "action_units": tfds.features.Text(),
    "au_multi_hot": tfds.features.Tensor(shape=(len(AU_VOCAB),), dtype=np.bool_),
    "onset": tfds.features.Scalar(dtype=np.int32),
    "apex": tfds.features.Scalar(dtype=np.int32),
    "offset": tfds.features.Scalar(dtype=np.int32),
    "apex_estimated": tfds.features.Scalar(dtype=np.bool_),
    "fps": tfds.features.Scalar(dtype=np.float32),
  }
  if ground_truth:
    feats["identity"] = tfds.features.Text()
    feats["ground_truth_identity"] = tfds.features.Text()
    feats["ground_truth_frames"] = _bytes_sequence()
    feats["ground_truth_landmarks"] = tfds.features.Tensor(
      shape=(None, NUM_LANDMARKS, 2), dtype=np.float32
    )
  return tfds.features.FeaturesDict(feats)
