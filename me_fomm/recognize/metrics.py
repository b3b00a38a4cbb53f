"""UF1 and UAR as MEGC2019 defines them (See et al. 2019, Composite Database Evaluation).

Predictions of every leave-one-subject-out fold are pooled first, then scored once: per class c,
F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) and recall_c = TP_c / N_c (N_c = clips of class c); UF1 is the
mean of F1_c and UAR the mean of recall_c over the classes. Per corpus, the pooled predictions of that
corpus' clips are scored the same way.

A class with no clip in the scored set has neither an F1 (0 / 0 without predictions of it) nor a
recall; it is left out of both means (on MEGC's composite and each of its corpora all three classes
occur, so this is the definition as published). Predictions of such a class still count: they are
false negatives of the true classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# The MEGC2019 classes, in the order of `me_fomm.data.vocab.LABELS` (whose `other` is not scored).
CLASSES = ("negative", "positive", "surprise")


def confusion(labels, predictions, num_classes: int = len(CLASSES)) -> np.ndarray:
  """(classes, classes) int64 counts: row = true class, column = predicted class."""
  labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
  if labels.shape != predictions.shape:
    raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
  bad = (labels < 0) | (labels >= num_classes) | (predictions < 0) | (predictions >= num_classes)
  if bad.any():
    raise ValueError(f"class indices must be in [0, {num_classes}); found {labels[bad][:3]}")
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (labels, predictions), 1)
  return cm


def per_class(cm: np.ndarray) -> dict:
  """{'f1', 'recall', 'support'}: (classes,) arrays; NaN where a class has no clip."""
  cm = np.asarray(cm, np.float64)
  tp = np.diag(cm)
  support = cm.sum(1)
  fp = cm.sum(0) - tp
  fn = support - tp
  with np.errstate(invalid="ignore", divide="ignore"):
    f1 = np.where(support > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    recall = np.where(support > 0, tp / support, np.nan)
  return {"f1": f1, "recall": recall, "support": support.astype(np.int64)}


def uf1(cm: np.ndarray) -> float:
  """Unweighted F1: mean over the classes that occur of 2 TP / (2 TP + FP + FN)."""
  f1 = per_class(cm)["f1"]
  return float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")


def uar(cm: np.ndarray) -> float:
  """Unweighted average recall: mean over the classes that occur of TP / N."""
  recall = per_class(cm)["recall"]
  return float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")


def scores(cm: np.ndarray) -> dict:
  """{'uf1', 'uar', 'accuracy', 'clips', 'confusion'} of one confusion matrix."""
  cm = np.asarray(cm)
  n = int(cm.sum())
  return {
    "uf1": uf1(cm),
    "uar": uar(cm),
    "accuracy": float(np.trace(cm) / n) if n else float("nan"),
    "clips": n,
    "confusion": cm.tolist(),
  }


def grouped_scores(labels, predictions, groups: Sequence[str] | None = None) -> dict:
  """{'overall': scores, <group>: scores, ...} with one entry per distinct group (e.g. corpus)."""
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  out = {"overall": scores(confusion(labels, predictions))}
  if groups is not None:
    groups = np.asarray(groups)
    for g in sorted(set(groups.tolist())):
      keep = groups == g
      out[str(g)] = scores(confusion(labels[keep], predictions[keep]))
  return out
