"""The class names and the action-unit vocabulary of every micro-expression record.

The corpus builders (`datasets/`) write labels and AU vectors with these; the library reads them
back (class names of a record's `label` index, AU codes of its `action_units` text).
"""

from __future__ import annotations

import re

import numpy as np

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
# fmt: off
AU_VOCAB = (
  1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28,
  31, 38, 39, 43, 45, 61, 62, 63, 64,
)
# fmt: on
_AU_INDEX = {au: i for i, au in enumerate(AU_VOCAB)}


def emotion_to_label(emotion: str) -> str:
  """Maps an annotated emotion to negative/positive/surprise, anything else to `other`."""
  return EMOTION_TO_LABEL.get(emotion.strip().lower(), "other")


def label_name(label) -> str:
  """A record's label as a class name: an index into LABELS (as stored), or a name already."""
  if isinstance(label, bytes):
    return label.decode("utf-8")
  if isinstance(label, str):
    return label
  return LABELS[int(label)]


def parse_action_units(text) -> list[int]:
  """AU numbers in a coding cell such as '4+7', 'AU4+AU7', 'R12+L14A', '12?' or 6 (int).

  Side (L/R) prefixes, intensity suffixes (A-E) and question marks are ignored: the
  multi-hot vector says which units moved, not how strongly or on which side.
  """
  if text is None:
    return []
  if isinstance(text, bytes):
    text = text.decode("utf-8")
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
