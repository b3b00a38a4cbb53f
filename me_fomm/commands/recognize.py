r"""`me-fomm recognize`: STSTNet under MEGC2019's leave-one-subject-out protocol; UF1 and UAR.

    me-fomm recognize --dataset=megc --data_dir=~/tensorflow_datasets --out=runs/recognize
    me-fomm recognize --dataset=synthetic_me/demo --data_dir=runs/demo/data --out=runs/recognize
    me-fomm recognize --dataset=megc --data_dir=... --augment=runs/augmented --out=...

Features: TV-L1 flow from the onset to the apex frame (horizontal, vertical, optical strain; 28x28).
On a corpus every subject is held out in turn and the predictions of all folds are scored together
(composite, SMIC, CASME II, SAMM on `megc`). On synthetic_me the recogniser trains on the training
identity's clips and is tested on the held-out identity's ground-truth clips (a face it never saw).
`--augment` (a folder written by `me-fomm augment`) adds generated clips to every fold, except those
moved by or showing the fold's test subject, and reports both side by side.

Writes recognition.json (scores, every prediction) and confusion.png. The last line printed is
`UF1 <x> UAR <y>` (with --augment: of the folds trained with the generated clips).
"""

from __future__ import annotations

import logging
import os
import time

from me_fomm.commands import options as O

OPTIONS = (
  O.string(
    "dataset",
    "synthetic_me/demo",
    "Dataset: megc, casme2, samm, smic/hs, or synthetic_me[/variant] (held-out identity test).",
  ),
  O.string("data_dir", None, "TFDS data dir (where `me-fomm prepare` wrote it).", required=True),
  O.string(
    "out", None, "Output folder (created; refused if it exists unless --overwrite).", required=True
  ),
  O.string(
    "augment",
    None,
    "Folder written by `me-fomm augment`: also train with its generated clips and compare.",
  ),
  O.integer("image_size", None, "Stored resolution to read (default: the dataset's default)."),
  O.integer("steps", 500, "Adam steps per fold."),
  O.integer("batch_size", 64, "Clips per step and fold (a smaller fold trains on all its clips)."),
  O.real("learning_rate", 2e-3, "Adam learning rate."),
  O.integer("seed", 0, "Initial weights and sampling."),
  O.integer("flow_size", 128, "Frames are resized to this before the TV-L1 flow."),
  O.OVERWRITE,
)

log = logging.getLogger("me_fomm.recognize")


def fit_config(opts):
  from me_fomm.recognize.fit import FitConfig

  config = FitConfig(
    steps=opts.steps,
    batch_size=opts.batch_size,
    learning_rate=opts.learning_rate,
    seed=opts.seed,
  )
  config.check()
  if not 16 <= opts.flow_size <= 1024:
    raise ValueError(f"--flow_size must be in [16, 1024] pixels, got {opts.flow_size}")
  return config


def load_samples(dataset: str, data_dir: str, image_size=None, flow_size=128, progress=True):
  """(train samples, test samples, name of the overall row) for `dataset` (see the module doc)."""
  from me_fomm.data import sources
  from me_fomm.recognize import samples as S

  base = dataset.split("/")[0]
  load = lambda split: sources.load(dataset, data_dir, split, image_size=image_size)
  if base == "synthetic_me":
    train = S.from_source(load("train"), flow_size=flow_size, progress=progress and "flow: train")
    test = S.from_source(
      load("test"),
      key="ground_truth_frames",
      face_field="ground_truth_identity",
      flow_size=flow_size,
      progress=progress and "flow: held-out identity",
    )
    return train, test, "held-out identity"
  source = load("train")  # the corpora have one split; LOSO folds are made from it
  samples = S.from_source(source, flow_size=flow_size, progress=progress and f"flow: {dataset}")
  return samples, samples, "composite" if base == "megc" else base


def augmented_samples(folder: str, known_subjects, flow_size=128, progress=True):
  """Samples of the `augmented` dataset `me-fomm augment` wrote into `folder`."""
  from me_fomm.data import sources
  from me_fomm.recognize import samples as S

  root = os.path.join(folder, "augmented")
  configs = (
    sorted(n for n in os.listdir(root) if not n.startswith(".")) if os.path.isdir(root) else []
  )
  if len(configs) != 1:
    raise ValueError(
      f"--augment={folder}: expected one augmented dataset (a folder written by `me-fomm augment`"
      f"), found {len(configs) or 'no'} configs under {root}"
    )
  aug = S.from_source(
    sources.load(f"augmented/{configs[0]}", folder, "train"),
    flow_size=flow_size,
    progress=progress and "flow: augmented",
  )
  unknown = sorted(set(aug.motion_subjects) - set(known_subjects))
  if unknown:
    raise ValueError(
      f"--augment={folder}: its clips are driven by subjects that are not in --dataset "
      f"(e.g. {unknown[0]!r}); generate it from the same dataset"
    )
  return aug


def run(opts, progress: bool = True) -> dict:
  """Runs the protocol; returns {'table', 'uf1', 'uar', 'runs': {name: LosoResult}, 'paths', ...}."""
  from me_fomm.generate import pipeline
  from me_fomm.recognize import protocol
  from me_fomm.recognize import report as R

  config = fit_config(opts)
  out = pipeline.check_output(opts.out, opts.overwrite)
  t0 = time.time()
  train, test, overall = load_samples(
    opts.dataset, opts.data_dir, opts.image_size, opts.flow_size, progress
  )
  augment = None
  if opts.augment:
    known = set(train.subjects) | set(test.subjects)
    augment = augmented_samples(opts.augment, known, opts.flow_size, progress)
  t_features = time.time() - t0
  log.info(
    "recognise: %d training and %d test clips (%s), %d generated; features in %.1f s",
    len(train),
    len(test),
    opts.dataset,
    0 if augment is None else len(augment),
    t_features,
  )
  runs = protocol.loso(train, test, config, augment)
  seconds = round(time.time() - t0, 1)
  scores = {name: r.scores for name, r in runs.items()}
  titles = {protocol.WITHOUT: "recorded clips", protocol.WITH: "+ generated clips"}
  table = R.format_table(
    {titles[n]: s for n, s in scores.items()}, overall, published=opts.dataset == "megc"
  )
  last = runs[protocol.WITH if augment is not None else protocol.WITHOUT].scores["overall"]
  with pipeline.staged_output(out, opts.overwrite) as tmp:
    R.write_json(
      os.path.join(tmp, "recognition.json"),
      {
        "dataset": opts.dataset,
        "test": overall,
        "config": {k: opts[k] for k in ("steps", "batch_size", "learning_rate", "seed")},
        "flow_size": opts.flow_size,
        "augment": opts.augment,
        "generated_clips": 0 if augment is None else len(augment),
        "seconds": {"features": round(t_features, 1), "total": seconds},
        "runs": {n: r.as_dict() for n, r in runs.items()},
      },
    )
    panels = [
      (f"{titles[n]}: {row}" if len(runs) > 1 else row, scores[n][key]["confusion"])
      for n in runs
      for row, key in R.table_rows(scores[n], overall)
    ]
    R.write_confusion_png(os.path.join(tmp, "confusion.png"), panels)
  return {
    "table": table,
    "uf1": last["uf1"],
    "uar": last["uar"],
    "runs": runs,
    "seconds": seconds,
    "paths": {
      "json": os.path.join(out, "recognition.json"),
      "confusion": os.path.join(out, "confusion.png"),
    },
  }


def show(result: dict) -> None:
  print(result["table"])
  print(f"json: {result['paths']['json']}\nconfusion matrices: {result['paths']['confusion']}")
  print(f"UF1 {result['uf1']:.4f} UAR {result['uar']:.4f}")
