"""Leave-one-subject-out recognition: one fold per test subject, every fold in one compiled program.

`loso(train, test)` holds out each subject of `test` in turn: the fold trains on the `train` samples in
which that subject appears neither as the face nor as the motion (`fold_masks`), and classifies the
test subject's samples. With `train` = `test` = a corpus this is MEGC2019's LOSO protocol; with
synthetic_me's training identity as `train` and the held-out identity's ground truth as `test` it is
one fold that never saw the test face.

`augment` adds generated clips to every fold's training set under the same rule, so no fold trains on
a clip generated from its test subject's motion or onto its test subject's face. The folds without and
with augmentation share one program (two masks per subject over the same samples), so the comparison
costs one compilation and the same initial weights.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Sequence

import numpy as np

from me_fomm.recognize import fit as fit_lib
from me_fomm.recognize import metrics as M
from me_fomm.recognize.samples import Samples

log = logging.getLogger(__name__)

WITHOUT, WITH = "without_augmentation", "with_augmentation"


def fold_masks(
  pool: Samples, held_out: Sequence[str], exclude_names: Sequence[set] | None = None
) -> np.ndarray:
  """(folds, samples) bool: sample n trains fold f iff subject held_out[f] is neither its face nor its
  motion (and its name is not in exclude_names[f], e.g. the very clips a fold classifies)."""
  subjects = np.asarray(pool.subjects, dtype=object)
  motion = np.asarray(pool.motion_subjects, dtype=object)
  names = np.asarray(pool.names, dtype=object)
  masks = np.zeros((len(held_out), len(pool)), bool)
  for f, s in enumerate(held_out):
    masks[f] = (subjects != s) & (motion != s)
    if exclude_names is not None and exclude_names[f]:
      masks[f] &= ~np.isin(names, list(exclude_names[f]))
  return masks


def check_folds(masks: np.ndarray, held_out: Sequence[str]) -> None:
  empty = [s for s, m in zip(held_out, masks) if not m.any()]
  if empty:
    raise ValueError(
      f"leave-one-subject-out: no training clip left for the fold of {empty[0]!r} "
      f"({len(empty)} such folds): every clip shows or moves that subject; the dataset needs "
      "clips of at least two subjects"
    )


@dataclasses.dataclass
class LosoResult:
  """Pooled predictions of every fold, and their MEGC2019 scores overall and per corpus."""

  labels: np.ndarray
  predictions: np.ndarray
  subjects: list
  corpora: list
  names: list
  scores: dict  # {'overall': {...}, <corpus>: {...}} (metrics.grouped_scores)
  folds: int
  train_clips: dict  # held-out subject -> training clips of its fold
  masks: np.ndarray  # (folds, pool samples) training masks, for inspection
  held_out: list
  pool_subjects: list  # face and motion subject of each pool sample (the masks' columns)
  pool_motion_subjects: list

  def as_dict(self) -> dict:
    return {
      "scores": self.scores,
      "folds": self.folds,
      "train_clips_per_fold": self.train_clips,
      "predictions": [
        {"clip": n, "subject": s, "label": M.CLASSES[y], "predicted": M.CLASSES[p]}
        for n, s, y, p in zip(self.names, self.subjects, self.labels, self.predictions)
      ],
    }


def loso(
  train: Samples,
  test: Samples,
  config: fit_lib.FitConfig | None = None,
  augment: Samples | None = None,
) -> dict:
  """{WITHOUT: LosoResult} and, with `augment`, {WITH: LosoResult} too (see the module doc).

  `train` may be `test` itself (a corpus' LOSO). Raises ValueError when a fold has no training clip.
  """
  config = config or fit_lib.FitConfig()
  held_out = sorted(set(test.subjects))
  pool = train if augment is None else Samples.concat(train, augment)
  runs = {WITHOUT: fold_masks(pool, held_out)}
  if augment is not None:
    runs[WITHOUT][:, len(train) :] = False  # the same folds on the recorded clips alone
    runs[WITH] = fold_masks(pool, held_out)
  for masks in runs.values():
    check_folds(masks, held_out)
  stacked = np.concatenate(list(runs.values()))
  t0 = time.time()
  # Fold ids by subject: a subject's folds with and without augmentation draw the same stream.
  ids = np.tile(np.arange(len(held_out)), len(runs))
  params, losses = fit_lib.fit_folds(pool.features, pool.labels, stacked, config, fold_ids=ids)
  logits = fit_lib.predict(params, test.features, config.num_classes)
  log.info(
    "recognise: %d folds x %d steps trained in %.1f s (final loss %.3f)",
    len(stacked),
    config.steps,
    time.time() - t0,
    float(np.mean(losses[:, -1])),
  )
  fold_of = np.asarray([held_out.index(s) for s in test.subjects])
  out = {}
  for r, (name, masks) in enumerate(runs.items()):
    rows = r * len(held_out) + fold_of
    predictions = logits[rows, np.arange(len(test))].argmax(-1)
    out[name] = LosoResult(
      labels=np.asarray(test.labels),
      predictions=predictions,
      subjects=list(test.subjects),
      corpora=list(test.corpora),
      names=list(test.names),
      scores=M.grouped_scores(test.labels, predictions, test.corpora),
      folds=len(held_out),
      train_clips={s: int(m.sum()) for s, m in zip(held_out, masks)},
      masks=masks,
      held_out=held_out,
      pool_subjects=list(pool.subjects),
      pool_motion_subjects=list(pool.motion_subjects),
    )
  return out
