r"""`me-fomm evaluate`: score a checkpoint; writes metrics.json and report.html.

    me-fomm evaluate --checkpoint=runs/demo/train --dataset=synthetic_me --data_dir=runs/demo/data \
        --out=runs/demo/eval

Protocols (see me_fomm/evaluate/protocols.py): reconstruction (first frame drives its own clip: L1, LPIPS,
AKD, MKR, AED) and cross-identity (AED to the target, motion fidelity; on synthetic_me also L1, LPIPS and AKD
against the stored ground truth). Every table has the copy-the-target baseline beside the model.
`--protocols=...,au_driven` adds the cross-identity cases generated from each clip's FACS codes alone
(tip24 checkpoints; `--au_model` for a fitted AU model), beside the clip-driven result.
`--protocols=...,recognition` adds the recognition protocol (me_fomm/evaluate/recognition.py): STSTNet,
trained on the dataset's `train` split without the held-out subject (on synthetic_me: the training
identity's clips), classifies the generated clips beside the driving clips / ground truth and the copy.
"""

from __future__ import annotations

import logging
import os

from me_fomm.commands import options as O

OPTIONS = (
  O.CHECKPOINT,
  O.string(
    "dataset", "synthetic_me", "Dataset to score on (TFDS name: synthetic_me, casme2, samm, ...)."
  ),
  O.string("data_dir", None, "TFDS data dir.", required=True),
  O.string("split", "test", "Split to score on."),
  O.string(
    "out", None, "Report folder (created; refused if it exists unless --overwrite).", required=True
  ),
  O.string(
    "targets",
    None,
    "Optional folder of target photos for the cross-identity protocol (default: the held-out "
    "identity on synthetic_me, else another subject's onset frame).",
  ),
  O.integer("per_class", 2, "Clips per class to score (0 = all)."),
  O.integer("max_clips", 0, "At most this many clips (0 = no limit)."),
  O.integer(
    "descriptor_every",
    1,
    "Identity descriptors (AED) on every k-th frame only: dlib's descriptor costs ~0.2 s a frame "
    "on a CPU core (1 = every frame, FOMM's protocol).",
  ),
  O.strings(
    "protocols",
    ["reconstruction", "cross_identity"],
    "Protocols to run: reconstruction, cross_identity, au_driven (tip24), recognition.",
  ),
  O.string("au_model", None, "AU motion model of au_driven (default: the FACS patterns)."),
  O.integer("image_size", None, "Stored resolution to read (default: the dataset's default)."),
  O.BATCH_SIZE,
  O.ADAPT_SCALE,
  O.OVERWRITE,
  O.EXPECT_CONFIG,
  O.STEP,
)

log = logging.getLogger("me_fomm.evaluate")


def run(opts, progress: bool = True) -> dict:
  """Scores the checkpoint on `opts.dataset`; returns runner.evaluate's result with final paths."""
  from me_fomm.commands import configs
  from me_fomm.data import sources
  from me_fomm.evaluate import runner
  from me_fomm.generate import pipeline

  runner.check_protocols(opts.protocols)
  out = pipeline.check_output(opts.out, opts.overwrite)
  expect = configs.expected_model_config(opts.config)
  model = pipeline.load_model(opts.checkpoint, expect=expect, step=opts.step)
  source = sources.load(opts.dataset, opts.data_dir, opts.split, image_size=opts.image_size)
  clips = runner.select_clips(
    source, per_class=opts.per_class or None, max_clips=opts.max_clips or None
  )
  targets = runner.read_targets(opts.targets, model.config) if opts.targets else None
  recognition = None
  if "recognition" in opts.protocols:
    from me_fomm.evaluate import recognition as recognition_lib

    # The recogniser's clips: a corpus' one split (one LOSO fold per held-out subject), or
    # synthetic_me's training identity.
    train = sources.load(opts.dataset, opts.data_dir, "train", image_size=opts.image_size)
    recognition = recognition_lib.setup_from_source(train, progress=progress)
  meta = {"dataset": f"{opts.dataset} ({opts.split})"}
  with pipeline.staged_output(out, opts.overwrite) as tmp:
    result = runner.evaluate(
      model,
      clips,
      tmp,
      targets=targets,
      protocols=tuple(opts.protocols),
      au_model=opts.au_model,
      batch_size=opts.batch_size,
      meta=meta,
      progress=progress,
      recognition=recognition,
      descriptor_every=opts.descriptor_every,
      adapt_scale=opts.adapt_scale,
    )
  result["paths"] = {
    k: os.path.join(out, os.path.relpath(v, tmp)) for k, v in result["paths"].items()
  }
  return result


def show(result: dict) -> None:
  from me_fomm.evaluate.report import format_summaries

  print(format_summaries(result["summaries"]))
  print(f"report: {result['paths']['html']}\nmetrics: {result['paths']['metrics']}")
