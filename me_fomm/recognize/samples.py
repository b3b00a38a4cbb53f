"""Recognition samples: one STSTNet input per clip, with who is in it and whose motion moves it.

`from_source` reads a `me_fomm.data.sources` source, decoding only each clip's onset and apex frames.
Every sample knows two people: `subjects` (the face shown: the unit of leave-one-subject-out) and
`motion_subjects` (whose clip the motion comes from). They are the same person for a recorded clip;
a generated clip (`me-fomm augment`) shows one subject's face moved by another's clip, and a fold may
train on it only if neither is the fold's test subject (`protocol.fold_masks`).

Subjects are named as `me_fomm.data.folds.subject_key` names them (corpus-prefixed: 'casme2/sub01'),
so a composite's subjects stay distinct. Clips outside the three MEGC2019 classes (`other`) are left
out.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from me_fomm.data import images, vocab
from me_fomm.data.folds import subject_key
from me_fomm.recognize import features as F
from me_fomm.recognize.metrics import CLASSES


@dataclasses.dataclass
class Samples:
  """features (N, 28, 28, 3) float32; labels (N,) int (index into CLASSES); per sample `subjects`,
  `motion_subjects`, `corpora` and `names` (unique clip names, 'corpus/clip_id')."""

  features: np.ndarray
  labels: np.ndarray
  subjects: list
  motion_subjects: list
  corpora: list
  names: list

  def __post_init__(self):
    n = len(self.labels)
    lengths = {len(self.features), len(self.subjects), len(self.motion_subjects)}
    lengths |= {len(self.corpora), len(self.names)}
    if lengths != {n}:
      raise ValueError(f"Samples: fields of different lengths {sorted(lengths | {n})}")

  def __len__(self) -> int:
    return len(self.labels)

  @classmethod
  def concat(cls, *parts: "Samples") -> "Samples":
    return cls(
      features=np.concatenate([p.features for p in parts]),
      labels=np.concatenate([p.labels for p in parts]),
      **{
        k: [v for p in parts for v in getattr(p, k)]
        for k in ("subjects", "motion_subjects", "corpora", "names")
      },
    )


def label_index(record: dict) -> int | None:
  """The record's class as an index into CLASSES, or None for a class MEGC2019 does not score."""
  name = vocab.label_name(record["label"])
  return CLASSES.index(name) if name in CLASSES else None


def onset_apex(record: dict, key: str = "frames") -> tuple[np.ndarray, np.ndarray]:
  """The onset and apex frames (uint8 RGB) of a stored record, decoding only those two."""
  frames = record[key]
  onset = int(record.get("onset", 0))
  apex = record.get("apex")
  apex = (onset + len(frames) - 1) // 2 if apex is None else int(apex)
  if not (0 <= onset < len(frames) and 0 <= apex < len(frames)):
    raise ValueError(
      f"clip {record.get('clip_id', '?')}: onset {onset} / apex {apex} outside its "
      f"{len(frames)} frames; rebuild the dataset"
    )
  decode = lambda f: images.decode_frame(bytes(f)) if isinstance(f, bytes) else np.asarray(f)
  return decode(frames[onset]), decode(frames[apex])


def _text(record: dict, key: str, default: str = "") -> str:
  value = record.get(key, default)
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def from_source(
  source,
  key: str = "frames",
  face_field: str | None = None,
  flow_size: int = F.FLOW_SIZE,
  progress: bool | str = False,
) -> Samples:
  """Samples of every clip of a source in the three classes.

  Args:
    key: the frames to read ('frames'; 'ground_truth_frames' for synthetic_me's held-out identity).
    face_field: a record field naming whose face the frames show, when it is not `subject`
      (synthetic_me's ground truth: 'ground_truth_identity').
    progress: a tqdm bar (a string is its description).
  """
  indices = range(len(source))
  if progress:
    import tqdm

    indices = tqdm.tqdm(
      indices, desc=progress if isinstance(progress, str) else "flow", leave=False
    )
  feats, labels, subjects, motion, corpora, names = [], [], [], [], [], []
  for i in indices:
    record = source[i]
    label = label_index(record)
    if label is None:
      continue
    corpus = _text(record, "corpus")
    drives = subject_key({"subject": _text(record, "subject"), "corpus": corpus})
    face = drives
    if face_field:
      face = subject_key({"subject": _text(record, face_field), "corpus": corpus})
    if "driving_subject" in record:  # a generated clip: another subject's motion on this face
      drives = _text(record, "driving_subject")
    feats.append(F.flow_features(*onset_apex(record, key), flow_size=flow_size))
    labels.append(label)
    subjects.append(face)
    motion.append(drives)
    corpora.append(corpus)
    names.append(f"{corpus}/{_text(record, 'clip_id')}")
  if not labels:
    raise ValueError(
      f"{getattr(source, 'name', 'the dataset')}: no clip of the classes {', '.join(CLASSES)}"
    )
  return Samples(
    features=np.stack(feats),
    labels=np.asarray(labels, np.int32),
    subjects=subjects,
    motion_subjects=motion,
    corpora=corpora,
    names=names,
  )
