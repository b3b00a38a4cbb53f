"""`me-fomm demo`: the main job on a fresh machine, no corpus, no checkpoint download.

    me-fomm demo --workdir=runs/demo

1. builds `synthetic_me` (real face photos shipped with scikit-image and matplotlib, animated with
   micro-expression action units; a held-out identity receives the same motions as ground truth),
2. trains the built-in `demo` config (experiments/configs/demo.py),
3. drives the held-out identity with held-out (test-split) clips of each class -> mp4 + GIF, plain and
   magnified x8 (optionally after fine-tuning the generator on the held-out target photo alone:
   `--personalize_steps`),
4. evaluates (reconstruction; cross-identity with motion fidelity and ground-truth metrics; with tip24 the
   same cases generated from their FACS codes alone, `au_driven`) against the copy-the-target baseline,
   and recognition (STSTNet trained on the training identity classifies the generated, ground-truth and
   copy clips of every held-out clip), writes metrics.json + report.html (with per clip a trajectory plot,
   an apex motion map and a magnified GIF),
5. says whether the trained model beats the baseline on motion fidelity and on AKD against the ground truth.

About 5 to 16 minutes on two CPU cores (by the machine and how busy it is); `--quick` runs the same chain at toy
size (tests, smoke checks).

Workdir layout: data/ (TFDS records), train/ (checkpoints, metrics), generated/ (videos), report/.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from me_fomm.commands import options as O

OPTIONS = (
  O.string(
    "workdir", "runs/demo", "Folder for the corpus, the training run, the videos and the report."
  ),
  O.boolean(
    "overwrite", False, "Delete an existing demo workdir first (only one this command created)."
  ),
  O.boolean(
    "quick", False, "Toy sizes end to end (a few training steps): checks the chain, not the model."
  ),
  O.enum(
    "variant",
    "tip24",
    ["tip24", "seed", "fomm"],
    "Model variant of the demo config: tip24 (per-frame prior keypoints: their values carry the "
    "landmark motion), seed (onset keypoints: motion through the Jacobians only) or fomm.",
  ),
  O.integer(
    "personalize_steps",
    0,
    "Test-time personalisation: fine-tune the generator this many steps on the held-out target photo "
    "alone before driving it (0 = off, the default: the demo config's pixel skip already takes the "
    "target's pixels from the photo).",
  ),
  O.integer("steps", 0, "Training steps (0 = the config's: 800 for the demo, 3 with --quick)."),
  O.integer("per_class", 3, "Held-out clips per class to generate and score."),
)

log = logging.getLogger("me_fomm.demo")

MARKER = ".me_fomm_demo"


def demo_config(opts, data_dir: str = ""):
  """The training config the demo runs: the built-in `demo` config of the variant (`,quick` for --quick),
  with --steps, --per_class and --personalize_steps on top."""
  import jax

  from me_fomm_experiments.configs import demo as demo_cfg

  config = demo_cfg.get_config(opts.variant + (",quick" if opts.quick else ""))
  config.data.data_dir = data_dir
  if opts.steps:
    config.total_steps = int(opts.steps)
    config.checkpoint_every = min(config.checkpoint_every, int(opts.steps))
  config.evaluate.per_class = int(opts.per_class)
  config.personalize.steps = int(opts.personalize_steps)
  # The batch must split over the devices (tests simulate 4 CPU devices).
  n = jax.device_count()
  if config.batch_size % n:
    config.batch_size = (config.batch_size // n + 1) * n
  return config


def prepare_workdir(workdir: str, overwrite: bool) -> str:
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and os.listdir(workdir):
    if not overwrite:
      raise FileExistsError(
        f"demo workdir {workdir} already exists and is not empty; pass --overwrite to start over "
        "there, or choose another --workdir"
      )
    if not os.path.exists(os.path.join(workdir, MARKER)):
      raise FileExistsError(
        f"{workdir} exists but was not made by `me-fomm demo` (no {MARKER} file); refusing to delete "
        "it. Choose another --workdir."
      )
    shutil.rmtree(workdir)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, MARKER), "w") as f:
    f.write("made by me-fomm demo; --overwrite may delete this folder\n")
  return workdir


def personalize_config(config):
  """The demo config's test-time personalisation as a PersonalizeConfig, or None when off (0 steps)."""
  from me_fomm.generate.personalize import PersonalizeConfig

  fields = config.personalize.to_dict()
  return PersonalizeConfig(**fields) if fields["steps"] > 0 else None


def run(opts, progress: bool = True) -> dict:
  """The whole demo; returns {'report': html path, 'metrics': json path, 'verdicts': ..., 'videos': [...]}."""
  from me_fomm.data import sources
  from me_fomm.evaluate import report as report_lib
  from me_fomm.evaluate import runner
  from me_fomm.evaluate.recognition import setup_from_source
  from me_fomm.evaluate.verdicts import demo_verdicts
  from me_fomm.generate import magnify, pipeline
  from me_fomm.generate import video as video_lib
  from me_fomm.train import trainer

  t0 = time.time()

  def stage(msg, *args):
    log.info("[demo %5.0fs] " + msg, time.time() - t0, *args)

  workdir = prepare_workdir(opts.workdir, opts.overwrite)
  data_dir = os.path.join(workdir, "data")
  train_dir = os.path.join(workdir, "train")
  config = demo_config(opts, data_dir=data_dir)
  size = int(config.model.image_size)

  stage("1/5 building %s at %dx%d in %s", config.data.name, size, size, data_dir)
  sources.builder(
    config.data.name, data_dir, image_size=size, progress=progress
  ).download_and_prepare()

  stage(
    "2/5 training %s (%d steps, batch %d); metrics in %s",
    config.name,
    config.total_steps,
    config.batch_size,
    train_dir,
  )
  final = trainer.train(config, train_dir)
  if final.get("preempted"):
    # The trainer stops cleanly on SIGTERM with a checkpoint; scoring a half-trained model here would
    # print verdicts about the wrong model.
    raise O.CommandError(
      f"training was interrupted at step {int(final.get('step', 0))} of {config.total_steps}; its "
      f"checkpoint is in {train_dir}. Score it with `me-fomm evaluate --checkpoint={train_dir} "
      f"--dataset={config.data.name} --data_dir={data_dir} --out=...`, or run the demo again with "
      "--overwrite."
    )
  scalars = {
    k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
  }
  stage("training done: %s", {k: round(float(v), 4) for k, v in scalars.items()})

  stage("3/5 loading the checkpoint")
  model = pipeline.load_model(train_dir)
  test = sources.load(config.data.name, data_dir, "test", image_size=size)
  clips = runner.select_clips(test, per_class=config.evaluate.per_class)
  stage(
    "4/5 generating the held-out identity from %d held-out clips (%s) and scoring them",
    len(clips),
    ", ".join(sorted({c.label for c in clips})),
  )
  # Recognition: STSTNet trained on the training identity's clips classifies every held-out clip
  # generated on the held-out identity (only onset and apex frames: seconds).
  recognition = setup_from_source(
    sources.load(config.data.name, data_dir, "train", image_size=size),
    clips=runner.select_clips(test),
  )
  report_dir = os.path.join(workdir, "report")
  with pipeline.staged_output(report_dir, overwrite=True) as tmp:
    result = runner.evaluate(
      model,
      clips,
      tmp,
      batch_size=config.evaluate.batch_size,
      descriptor_every=config.evaluate.get("descriptor_every", 1),
      adapt_scale=config.evaluate.get("adapt_scale", False),
      progress=progress,
      verdicts_fn=demo_verdicts,
      personalize=personalize_config(config),
      protocols=runner.protocols_for(model.config, recognition=True),
      recognition=recognition,
      meta={
        "demo": "quick" if opts.quick else "full",
        "config": config.name,
        "train_steps": int(config.total_steps),
      },
    )
  stage("5/5 writing the videos")
  videos = []
  with pipeline.staged_output(os.path.join(workdir, "generated"), overwrite=True) as tmp:
    for s in result["results"].get("cross_identity", []):
      c = s.case
      strip = video_lib.side_by_side(c.driving, c.target, s.generated, c.ground_truth)
      # The same panels with their change from the onset magnified (and labelled so): the synthetic
      # motion is 0.25-1 px at 64 px, invisible in the plain strip.
      magnified = magnify.magnified_strip(
        [("driving", c.driving), ("generated", s.generated), ("ground truth", c.ground_truth)],
        reference=c.reference,
        factor=report_lib.MAGNIFY,
      )
      paths = video_lib.write_outputs(
        tmp,
        f"{c.label}_{c.name}",
        s.generated,
        c.fps,
        extra=[("side_by_side", strip), ("magnified", magnified)],
      )
      videos += [os.path.join(workdir, "generated", os.path.basename(p)) for p in paths.values()]
  stage("done in %.1f min", (time.time() - t0) / 60)
  return {
    "report": os.path.join(report_dir, "report.html"),
    "metrics": os.path.join(report_dir, "metrics.json"),
    "verdicts": result["verdicts"],
    "summaries": result["summaries"],
    "videos": videos,
    "workdir": workdir,
  }


def show(result: dict) -> None:
  from me_fomm.evaluate.report import format_summaries

  print(format_summaries(result["summaries"]))
  for v in (result["verdicts"] or {}).values():
    print(("PASS  " if v["passed"] else "FAIL  ") + v["text"])
  print(f"videos:  {os.path.join(result['workdir'], 'generated')}")
  print(f"report:  {result['report']}")
  print(f"metrics: {result['metrics']}")
