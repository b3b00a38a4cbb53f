"""Generated clips for recognition: which clip drives which face, and the staging folder the
`augmented` dataset is built from (`me-fomm augment` generates; `datasets/augmented` reads).

Every driving clip is sent onto `targets_per_clip` *other* subjects (distinct, drawn at random), each
represented by the onset frame of one of its clips (drawn at random): the generated clip carries the
driving subject's motion on the target subject's face. Whether a fold may train on it is decided by
both (`me_fomm.recognize.protocol.fold_masks`).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

INDEX = "clips.json"  # the staging folder's index (read by datasets/augmented)


def plan_targets(subjects: Sequence[str], targets_per_clip: int, seed: int = 0) -> list[list[int]]:
  """For each clip i, the indices of the clips whose onset frames it drives: one clip each of
  min(targets_per_clip, other subjects) distinct subjects other than subjects[i]."""
  if targets_per_clip < 1:
    raise ValueError(f"--targets_per_clip must be >= 1, got {targets_per_clip}")
  by_subject: dict[str, list[int]] = {}
  for i, s in enumerate(subjects):
    by_subject.setdefault(s, []).append(i)
  if len(by_subject) < 2:
    raise ValueError(
      f"augmentation needs clips of at least two subjects (a clip drives other subjects' faces); "
      f"found only {sorted(by_subject)}"
    )
  names = sorted(by_subject)
  rng = np.random.default_rng(seed)
  plan = []
  short = 0
  for s in subjects:
    others = [n for n in names if n != s]
    k = min(targets_per_clip, len(others))
    short += k < targets_per_clip
    chosen = rng.choice(len(others), size=k, replace=False)
    plan.append([int(rng.choice(by_subject[others[c]])) for c in sorted(chosen)])
  if short:
    log.warning(
      "%d clips have fewer than %d other subjects to drive; they drive every other subject once",
      short,
      targets_per_clip,
    )
  return plan


class Staging:
  """Writes generated clips into a folder: one `.npz` (frames, landmarks) per clip and an index."""

  def __init__(self, folder: str):
    self.folder = folder
    self.entries: list[dict] = []
    os.makedirs(folder, exist_ok=True)

  def add(self, entry: dict, frames: np.ndarray, landmarks: np.ndarray) -> None:
    """`entry`: the record's fields (clip_id, subject, corpus, label, emotion, action_units, onset,
    apex, offset, fps, driving_subject, driving_clip_id, driving_corpus, target_subject,
    target_clip_id); frames uint8 (T, S, S, 3), landmarks (T, 68, 2) pixels of those frames."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4:
      raise ValueError(
        f"staged frames must be uint8 (T, S, S, 3), got {frames.dtype} {frames.shape}"
      )
    name = f"{len(self.entries):06d}.npz"
    np.savez(
      os.path.join(self.folder, name),
      frames=frames,
      landmarks=np.asarray(landmarks, np.float32),
    )
    self.entries.append(dict(entry, file=name))

  def close(self) -> None:
    with open(os.path.join(self.folder, INDEX), "w") as f:
      json.dump(self.entries, f, indent=0)
