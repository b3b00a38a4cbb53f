"""The recognition protocol: does a recogniser that never saw the test subject recognise a generated
clip as the class of the clip that drove it?

For each cross-identity case (a clip driving another face, `runner.cross_identity_pairs`) STSTNet
(`me_fomm.recognize`) classifies the onset -> apex flow of four clips with the driving clip's label:
* `model`: the generated clip (only its onset and apex frames are generated);
* `driving`: the driving clip itself, and `ground_truth`: the same motion on the target identity
  (synthetic_me); the ceiling is the ground truth where there is one, else the driving clip;
* `copy_target`: the target copied into every frame: no motion, the floor (chance).

The recogniser of a case is trained on `RecognitionSetup.train` without the case's held-out subject:
the driving clip's subject on a corpus (one leave-one-subject-out fold per subject, all folds in one
compiled program), and on synthetic_me, where the ground truth shows an identity that no training clip
shows, on the training identity's clips (minus the driving clip itself, should it be one of them).
Scores are MEGC2019's UF1 and UAR over all cases (`me_fomm.recognize.metrics`).
"""

from __future__ import annotations

import dataclasses
import html
import logging
import os
import time
from typing import Callable, Mapping, Sequence

import numpy as np

from me_fomm.data.clip import Clip
from me_fomm.data.folds import subject_key
from me_fomm.evaluate import protocols as P
from me_fomm.recognize import features as F
from me_fomm.recognize import fit as fit_lib
from me_fomm.recognize import metrics as RM
from me_fomm.recognize import protocol
from me_fomm.recognize.samples import Samples

log = logging.getLogger(__name__)

DRIVING = "driving"
ROWS = (P.MODEL, P.GROUND_TRUTH, DRIVING, P.BASELINE)
ROW_TITLES = {
  P.MODEL: "generated",
  P.GROUND_TRUTH: "ground truth",
  DRIVING: "driving clip",
  P.BASELINE: "copy target",
}
# A case whose ground truth shows an identity that no training clip shows (synthetic_me).
HELD_OUT_IDENTITY = "<held-out identity>"


@dataclasses.dataclass
class RecognitionSetup:
  """What the protocol needs besides the model: the recogniser's training clips (`train`, samples of
  `me_fomm.recognize.samples.from_source`), the clips to generate from (`clips`; None = the
  evaluated clips), the training options and the flow resolution."""

  train: Samples
  clips: Sequence[Clip] | None = None
  fit: fit_lib.FitConfig = dataclasses.field(default_factory=fit_lib.FitConfig)
  flow_size: int = F.FLOW_SIZE


def setup_from_source(source, clips=None, fit=None, flow_size: int = F.FLOW_SIZE, progress=False):
  """A RecognitionSetup training on every clip of a source (a split of a prepared dataset)."""
  from me_fomm.recognize import samples

  train = samples.from_source(source, flow_size=flow_size, progress=progress and "flow: train")
  return RecognitionSetup(
    train=train, clips=clips, fit=fit or fit_lib.FitConfig(), flow_size=flow_size
  )


def _uint8(frames) -> np.ndarray:
  x = np.asarray(frames)
  return x if x.dtype == np.uint8 else np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def onset_apex_case(case: P.Case) -> P.Case:
  """The case cut to its onset and apex frames (relative motion from the onset, as the full clip)."""
  apex = case.apex if case.apex is not None else (case.reference + len(case.driving) - 1) // 2
  keep = [case.reference, apex]
  pick = lambda x: None if x is None else np.asarray(x)[keep]
  return dataclasses.replace(
    case,
    driving=pick(case.driving),
    driving_landmarks=pick(case.driving_landmarks),
    ground_truth=pick(case.ground_truth),
    reference=0,
    apex=1,
  )


def held_out_subject(clip: Clip, case: P.Case) -> str:
  if case.ground_truth is not None:
    return HELD_OUT_IDENTITY
  return subject_key({"subject": clip.subject or clip.name, "corpus": clip.corpus})


def score_recognition(
  pairs: Sequence[tuple[Clip, P.Case]],
  generate: Callable[[P.Case], np.ndarray],
  setup: RecognitionSetup,
) -> dict:
  """The protocol's summary: {'rows': {row: scores}, 'ceiling', 'cases', 'folds', 'per_case', ...}."""
  pairs = [(clip, case) for clip, case in pairs if clip.label in RM.CLASSES]
  if not pairs:
    raise ValueError(
      "recognition: no case of the classes " + ", ".join(RM.CLASSES) + " to generate from"
    )
  t0 = time.time()
  with_truth = all(case.ground_truth is not None for _, case in pairs)
  rows = {r: [] for r in ROWS if r != P.GROUND_TRUTH or with_truth}
  for _, case in pairs:
    short = onset_apex_case(case)
    frames = {
      P.MODEL: _uint8(generate(short)),
      DRIVING: short.driving,
      P.BASELINE: np.stack([short.target, short.target]),
    }
    if with_truth:
      frames[P.GROUND_TRUTH] = short.ground_truth
    for r in rows:
      rows[r].append(F.flow_features(frames[r][0], frames[r][1], flow_size=setup.flow_size))
  t_generate = time.time() - t0

  held = [held_out_subject(clip, case) for clip, case in pairs]
  folds = sorted(set(held))
  exclude = [{f"{c.corpus}/{c.clip_id}" for (c, _), h in zip(pairs, held) if h == s} for s in folds]
  masks = protocol.fold_masks(setup.train, folds, exclude)
  protocol.check_folds(masks, folds)
  params, _ = fit_lib.fit_folds(setup.train.features, setup.train.labels, masks, setup.fit)
  fold_of = np.asarray([folds.index(h) for h in held])
  labels = np.asarray([RM.CLASSES.index(clip.label) for clip, _ in pairs])
  names = list(rows)
  logits = fit_lib.predict(
    params, np.concatenate([np.stack(rows[r]) for r in names]), setup.fit.num_classes
  ).reshape(len(folds), len(names), len(pairs), -1)
  predictions, scores = {}, {}
  for k, r in enumerate(names):
    predictions[r] = logits[fold_of, k, np.arange(len(pairs))].argmax(-1)
    scores[r] = RM.scores(RM.confusion(labels, predictions[r]))
  log.info(
    "recognition: %d cases, %d folds, %.1f s (generation and flow %.1f s)",
    len(pairs),
    len(folds),
    time.time() - t0,
    t_generate,
  )
  return {
    "rows": scores,
    "ceiling": P.GROUND_TRUTH if with_truth else DRIVING,
    "cases": len(pairs),
    "folds": len(folds),
    "train_clips_per_fold": {s: int(m.sum()) for s, m in zip(folds, masks)},
    "classes": list(RM.CLASSES),
    "per_case": [
      {
        "name": case.name,
        "label": clip.label,
        "held_out": h,
        **{r: RM.CLASSES[int(predictions[r][i])] for r in rows},
      }
      for i, ((clip, case), h) in enumerate(zip(pairs, held))
    ],
    "seconds": round(time.time() - t0, 1),
  }


def format_summary(summary: Mapping) -> str:
  """Plain-text table of the protocol (what evaluate and the demo print)."""
  folds = f"{summary['folds']} fold" + ("s" if summary["folds"] != 1 else "")
  head = f"recognition ({summary['cases']} clips, {folds})"
  lines = [f"{head:34s} {'UF1':>7s}  {'UAR':>7s}  accuracy"]
  for r, s in summary["rows"].items():
    title = ROW_TITLES[r] + (
      " (ceiling)" if r == summary["ceiling"] else " (floor)" if r == P.BASELINE else ""
    )
    lines.append(f"  {title:32s} {s['uf1']:7.4f}  {s['uar']:7.4f}  {s['accuracy']:7.4f}")
  return "\n".join(lines)


def html_section(summary: Mapping, media_dir: str, rel_dir: str) -> str:
  """The report's recognition table and confusion matrices (written into media_dir)."""
  from me_fomm.recognize.report import write_confusion_png

  png = "recognition_confusion.png"
  write_confusion_png(
    os.path.join(media_dir, png),
    [(ROW_TITLES[r], s["confusion"]) for r, s in summary["rows"].items()],
  )
  cells = lambda v: "n/a" if v is None or not np.isfinite(v) else f"{v:.4f}"
  rows = "".join(
    f"<tr><td>{html.escape(ROW_TITLES[r])}"
    + (" (ceiling)" if r == summary["ceiling"] else " (floor)" if r == P.BASELINE else "")
    + f"</td><td>{cells(s['uf1'])}</td><td>{cells(s['uar'])}</td><td>{cells(s['accuracy'])}</td>"
    f"<td>{s['clips']}</td></tr>"
    for r, s in summary["rows"].items()
  )
  return (
    "<h2>Recognition: is a generated clip recognised as the class of the clip that drove it?</h2>"
    "<table><tr><th>clips classified</th><th>UF1</th><th>UAR</th><th>accuracy</th><th>clips</th>"
    f"</tr>{rows}</table>"
    "<p class='base'>STSTNet on TV-L1 onset&rarr;apex flow, trained without the held-out subject "
    f"({summary['folds']} fold{'s' if summary['folds'] != 1 else ''}); UF1/UAR as MEGC2019 defines them; chance UAR is 1/3.</p>"
    f"<img src='{html.escape(rel_dir)}/{png}'>"
  )
