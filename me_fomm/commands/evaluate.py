r"""`me-fomm evaluate`: score a checkpoint; writes metrics.json and report.html.

    me-fomm evaluate --checkpoint=runs/demo/train --dataset=synthetic_me --data_dir=runs/demo/data \
        --out=runs/demo/eval

Protocols (see me_fomm/evaluate/protocols.py): reconstruction (first frame drives its own clip: L1, LPIPS,
AKD, MKR, AED) and cross-identity (AED to the target, motion fidelity; on synthetic_me also L1, LPIPS and AKD
against the stored ground truth). Every table has the copy-the-target baseline beside the model.
"""

from __future__ import annotations

import logging
import os

from me_fomm.commands._common import FLAGS, define, run_command

define(
  "string", "checkpoint", None, "Checkpoint folder (or a training workdir holding checkpoints/)."
)
define(
  "string",
  "dataset",
  "synthetic_me",
  "Dataset to score on (TFDS name: synthetic_me, casme2, samm, ...).",
)
define("string", "data_dir", None, "TFDS data dir.")
define("string", "split", "test", "Split to score on.")
define("string", "out", None, "Report folder (created; refused if it exists unless --overwrite).")
define("bool", "overwrite", False, "Replace an existing output folder.")
define(
  "string",
  "targets",
  None,
  "Optional folder of target photos for the cross-identity protocol "
  "(default: the held-out identity on synthetic_me, else another subject's onset frame).",
)
define("integer", "per_class", 2, "Clips per class to score (0 = all).")
define("integer", "max_clips", 0, "At most this many clips (0 = no limit).")
define("list", "protocols", ["reconstruction", "cross_identity"], "Protocols to run.")
define("integer", "batch_size", 32, "Frames per compiled batch.")
define(
  "string",
  "config",
  None,
  "Refuse a checkpoint whose model config differs from this one (variant or config file).",
)

log = logging.getLogger("me_fomm.evaluate")


def run(
  checkpoint: str,
  dataset: str,
  data_dir: str,
  out: str,
  split: str = "test",
  overwrite: bool = False,
  targets: str | None = None,
  per_class: int | None = 2,
  max_clips: int | None = None,
  protocols=("reconstruction", "cross_identity"),
  batch_size: int = 32,
  config: str | None = None,
  progress: bool = True,
  verdicts_fn=None,
  meta: dict | None = None,
  image_size: int | None = None,
) -> dict:
  from me_fomm.data import sources
  from me_fomm.evaluate import runner
  from me_fomm.generate import pipeline, video
  from me_fomm.generate import target as target_lib

  if not checkpoint or not out or not data_dir:
    raise ValueError(
      "--checkpoint, --data_dir and --out are required (see `me-fomm evaluate --help`)"
    )
  out = pipeline.check_output(out, overwrite)
  model = pipeline.load_model(checkpoint, expect=pipeline.expected_model_config(config))
  source = sources.load(dataset, data_dir, split, image_size=image_size)
  clips = runner.select_clips(source, per_class=per_class or None, max_clips=max_clips or None)
  target_list = None
  if targets:
    if not os.path.isdir(targets):
      raise ValueError(f"--targets={targets!r} is not a folder of target photos")
    names = sorted(n for n in os.listdir(targets) if n.lower().endswith(video.IMAGE_EXTENSIONS))
    if not names:
      raise ValueError(f"--targets={targets!r} holds no images")
    target_list = [
      (
        os.path.splitext(n)[0],
        target_lib.prepare_target(
          video.read_image(os.path.join(targets, n)),
          int(model.config.image_size),
          need_landmarks=pipeline.needs_landmarks(model.config),
          where=f"target {n}",
        ),
      )
      for n in names
    ]
  meta = dict(meta or {}, dataset=f"{dataset} ({split})")
  with pipeline.staged_output(out, overwrite) as tmp:
    result = runner.evaluate(
      model,
      clips,
      tmp,
      targets=target_list,
      protocols=tuple(protocols),
      batch_size=batch_size,
      meta=meta,
      progress=progress,
      verdicts_fn=verdicts_fn,
    )
  result["paths"] = {
    k: os.path.join(out, os.path.relpath(v, tmp)) for k, v in result["paths"].items()
  }
  return result


def main(argv):
  run_command("evaluate", argv, _main)


def _main():
  result = run(
    FLAGS.checkpoint,
    FLAGS.dataset,
    FLAGS.data_dir,
    FLAGS.out,
    split=FLAGS.split,
    overwrite=FLAGS.overwrite,
    targets=FLAGS.targets,
    per_class=FLAGS.per_class,
    max_clips=FLAGS.max_clips,
    protocols=FLAGS.protocols,
    batch_size=FLAGS.batch_size,
    config=FLAGS.config,
  )
  print(format_summaries(result["summaries"]))
  print(f"report: {result['paths']['html']}\nmetrics: {result['paths']['metrics']}")


def format_summaries(summaries: dict) -> str:
  """A plain-text version of the report's tables."""
  from me_fomm.evaluate import protocols as P
  from me_fomm.evaluate.report import comparisons

  lines = []
  for name, s in summaries.items():
    truth = s.get(P.GROUND_TRUTH)
    lines.append(
      f"{name} ({s['cases']} clips)          model    copy-target  better"
      + ("    ground truth (ceiling)" if truth else "")
    )
    cmp = comparisons(s)
    for k, v in s[P.MODEL].items():
      if k == "scored_cases":
        continue
      b = s[P.BASELINE].get(k, float("nan"))
      better = ({True: "model", False: "baseline"}).get(cmp[k], "")
      t = "" if not truth or k not in truth else f"{truth[k]:12.4f}"
      lines.append(f"  {k:24s} {v:9.4f} {b:9.4f}    {better:8s}{t}")
  return "\n".join(lines)
