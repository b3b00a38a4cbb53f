"""`me-fomm demo`: the main job on a fresh machine, no corpus, no checkpoint download.

    me-fomm demo --workdir=runs/demo

1. builds `synthetic_me` (real face photos shipped with scikit-image and matplotlib, animated with
   micro-expression action units; a held-out identity receives the same motions as ground truth),
2. trains `experiments/configs/demo.py` with `me_fomm.train.trainer.train`,
3. drives the held-out identity with held-out (test-split) clips of each class -> mp4 + GIF (optionally after
   fine-tuning the generator on the held-out target photo alone: `--personalize_steps`),
4. evaluates (reconstruction; cross-identity with motion fidelity and ground-truth metrics) against the
   copy-the-target baseline, writes metrics.json + report.html,
5. says whether the trained model beats the baseline on motion fidelity and on AKD against the ground truth.

About 15 minutes on two CPU cores; `--quick` runs the same chain at toy size (tests, smoke checks).

Workdir layout: data/ (TFDS records), train/ (checkpoints, metrics), generated/ (videos), report/.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from me_fomm.commands._common import FLAGS, CommandError, define, run_command

define(
  "string",
  "workdir",
  "runs/demo",
  "Folder for the corpus, the training run, the videos and the report.",
)
define(
  "bool",
  "overwrite",
  False,
  "Delete an existing demo workdir first (only one this command created).",
)
define(
  "bool",
  "quick",
  False,
  "Toy sizes end to end (a few training steps): checks the chain, not the model.",
)
define(
  "string",
  "variant",
  "tip24",
  "Model variant of the demo config: tip24 (per-frame prior keypoints: their "
  "values carry the landmark motion), seed (onset keypoints: motion through the Jacobians only) or fomm.",
)
define(
  "integer",
  "personalize_steps",
  0,
  "Test-time personalisation: fine-tune the generator this many steps on "
  "the held-out target photo alone before driving it (0 = off, the default: the demo config's pixel skip "
  "already takes the target's pixels from the photo; --quick uses at most 2).",
)
define(
  "integer", "steps", 0, "Training steps (0 = the config's: 400 for the demo, 3 with --quick)."
)
define("integer", "per_class", 2, "Held-out clips per class to generate and score.")

log = logging.getLogger("me_fomm.demo")

MARKER = ".me_fomm_demo"


def demo_config(variant: str = "seed", quick: bool = False, steps: int = 0, data_dir: str = ""):
  """The training config the demo runs: experiments/configs/demo.py, or a toy version of it."""
  try:
    from experiments.configs import demo as demo_cfg
  except ImportError:
    from me_fomm_experiments.configs import demo as demo_cfg
  import jax

  from me_fomm.model.config import model_config

  config = demo_cfg.get_config(variant)
  config.data.data_dir = data_dir
  config.data.name = "synthetic_me/small" if quick else "synthetic_me/demo"
  if quick:
    # Smallest widths and depths the architecture allows: only compile time and a few steps remain.
    config.model = model_config(
      variant,
      image_size=config.model.image_size,
      kp_detector=dict(block_expansion=4, max_features=16, num_blocks=2, scale_factor=0.5),
      generator=dict(
        block_expansion=4,
        max_features=16,
        num_down_blocks=1,
        num_bottleneck_blocks=1,
        dense_motion=dict(block_expansion=4, max_features=16, num_blocks=2, scale_factor=0.5),
      ),
      discriminator=dict(scales=[1], block_expansion=4, max_features=16, num_blocks=2),
    )
    config.total_steps = 3
    config.batch_size = max(2, jax.device_count())
    config.loss.scales = (1,)
    # The equivariance losses double the compiled step (a TPS warp and a second keypoint pass); the
    # quick run checks the chain, so it trains on the perceptual loss alone.
    config.loss.equivariance_value = 0.0
    config.loss.equivariance_jacobian = 0.0
    config.log_every = 1
    config.image_every = 1000
    config.checkpoint_every = 3
  if steps:
    config.total_steps = int(steps)
    config.checkpoint_every = min(config.checkpoint_every, int(steps))
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
        f"demo workdir {workdir} already exists and is not empty; pass --overwrite to "
        "start over there, or choose another --workdir"
      )
    if not os.path.exists(os.path.join(workdir, MARKER)):
      raise FileExistsError(
        f"{workdir} exists but was not made by `me-fomm demo` (no {MARKER} file); "
        "refusing to delete it. Choose another --workdir."
      )
    shutil.rmtree(workdir)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, MARKER), "w") as f:
    f.write("made by me-fomm demo; --overwrite may delete this folder\n")
  return workdir


def verdicts(summaries: dict) -> dict:
  """The demo's two claims, checked: motion fidelity and AKD against the ground truth beat the baseline."""
  from me_fomm.evaluate import protocols as P

  cross = summaries.get("cross_identity")
  out = {}
  if cross is None:
    return out
  m, b = cross[P.MODEL], cross[P.BASELINE]
  corr, corr_b = (
    m.get("motion_correlation", float("nan")),
    b.get("motion_correlation", float("nan")),
  )
  ratio, ratio_b = m.get("apex_ratio", float("nan")), b.get("apex_ratio", float("nan"))
  # Both parts of motion fidelity must beat the baseline: the pattern (correlation) and the amplitude
  # (apex ratio nearer 1); a model that moves the right way but 100x too much does not pass.
  passed = bool(P.better("motion_correlation", corr, corr_b)) and bool(
    P.better("apex_ratio", ratio, ratio_b)
  )
  out["motion_fidelity"] = {
    "passed": passed,
    "text": (
      f"motion fidelity: AU keypoint trajectory correlation {corr:.3f} vs {corr_b:.3f} for the "
      f"copy-the-target baseline, apex magnitude ratio {ratio:.3f} vs {ratio_b:.3f} (1 = same "
      "amplitude): the model "
      + (
        "transfers the driving motion better than standing still."
        if passed
        else "does NOT beat the baseline on both."
      )
    ),
  }
  akd, akd_b = m.get("gt_akd", float("nan")), b.get("gt_akd", float("nan"))
  passed = bool(P.better("gt_akd", akd, akd_b))
  out["akd_ground_truth"] = {
    "passed": passed,
    "text": (
      f"AKD against the ground truth (same motion rendered on the held-out identity): {akd:.3f} px vs "
      f"{akd_b:.3f} px for the baseline: the model "
      + ("is closer to the truth." if passed else "does NOT beat the baseline.")
    ),
  }
  # The same with each clip's onset landmarks subtracted: a constant offset of the generated face (blur moves
  # dlib's fit by a fraction of a pixel everywhere, which alone can exceed the tiny true motion) cancels.
  al, al_b = m.get("gt_akd_aligned", float("nan")), b.get("gt_akd_aligned", float("nan"))
  passed = bool(P.better("gt_akd_aligned", al, al_b))
  out["akd_ground_truth_motion"] = {
    "passed": passed,
    "text": (
      f"AKD of the landmark motion (onset-aligned) against the ground truth: {al:.3f} px vs {al_b:.3f} "
      "px for the baseline: the model "
      + (
        "moves the landmarks closer to the true motion."
        if passed
        else "does NOT beat the baseline."
      )
    ),
  }
  return out


def personalize_config(steps: int, quick: bool = False):
  """The demo's test-time personalisation (None when off): one-shot fine-tuning of the generator on the
  target photo (Zakharov et al. 2019), which one training identity alone cannot teach the generator."""
  from me_fomm.generate.personalize import PersonalizeConfig

  if steps <= 0:
    return None
  if quick:  # the chain only: two L1 steps, no VGG compile
    return PersonalizeConfig(
      steps=min(int(steps), 2), batch_size=2, perceptual=(0, 0, 0, 0, 0), scales=(1,)
    )
  return PersonalizeConfig(
    steps=int(steps), learning_rate=1e-3, sigma_affine=0.02, identity_fraction=0.5
  )


def run(
  workdir: str,
  overwrite: bool = False,
  quick: bool = False,
  variant: str = "tip24",
  steps: int = 0,
  per_class: int = 2,
  progress: bool = True,
  personalize_steps: int = 0,
) -> dict:
  """The whole demo; returns {'report': html path, 'metrics': json path, 'verdicts': ..., 'videos': [...]}."""
  from me_fomm.data import sources
  from me_fomm.evaluate import runner
  from me_fomm.generate import pipeline
  from me_fomm.generate import video as video_lib
  from me_fomm.train import trainer

  t0 = time.time()

  def stage(msg, *args):
    log.info("[demo %5.0fs] " + msg, time.time() - t0, *args)

  workdir = prepare_workdir(workdir, overwrite)
  data_dir = os.path.join(workdir, "data")
  config = demo_config(variant, quick=quick, steps=steps, data_dir=data_dir)
  size = int(config.model.image_size)

  stage("1/5 building %s at %dx%d in %s", config.data.name, size, size, data_dir)
  b = sources.builder(config.data.name, data_dir, image_size=size, progress=progress)
  b.download_and_prepare()
  config.data.image_size = size

  stage(
    "2/5 training %s (%d steps, batch %d); metrics in %s",
    config.name,
    config.total_steps,
    config.batch_size,
    os.path.join(workdir, "train"),
  )
  final = trainer.train(config, os.path.join(workdir, "train"))
  if final.get("preempted"):
    # The trainer stops cleanly on SIGTERM with a checkpoint; scoring a half-trained model here would
    # print verdicts about the wrong model.
    raise CommandError(
      f"training was interrupted at step {int(final.get('step', 0))} of {config.total_steps}; its checkpoint "
      f"is in {os.path.join(workdir, 'train')}. Score it with `me-fomm evaluate --checkpoint="
      f"{os.path.join(workdir, 'train')} --dataset={config.data.name} --data_dir={data_dir} --out=...`, "
      "or run the demo again with --overwrite."
    )
  stage(
    "training done: %s",
    {
      k: round(float(v), 4)
      for k, v in final.items()
      if isinstance(v, (int, float)) and not isinstance(v, bool)
    },
  )

  stage("3/5 loading the checkpoint")
  model = pipeline.load_model(os.path.join(workdir, "train"))
  test = sources.load(config.data.name, data_dir, "test", image_size=size)
  clips = runner.select_clips(test, per_class=per_class)
  stage(
    "4/5 generating the held-out identity from %d held-out clips (%s) and scoring them",
    len(clips),
    ", ".join(sorted({c.label for c in clips})),
  )
  report_dir = os.path.join(workdir, "report")
  with pipeline.staged_output(report_dir, overwrite=True) as tmp:
    result = runner.evaluate(
      model,
      clips,
      tmp,
      batch_size=32,
      progress=progress,
      verdicts_fn=verdicts,
      personalize=personalize_config(personalize_steps, quick),
      meta={
        "demo": "quick" if quick else "full",
        "config": config.name,
        "train_steps": int(config.total_steps),
      },
    )
  stage("5/5 writing the videos")
  videos = []
  with pipeline.staged_output(os.path.join(workdir, "generated"), overwrite=True) as tmp:
    for s in result["results"].get("cross_identity", []):
      c = s.case
      stem = f"{c.label}_{c.name}"
      strip = video_lib.side_by_side(c.driving, c.target, s.generated, c.ground_truth)
      paths = video_lib.write_outputs(
        tmp, stem, s.generated, c.fps, extra=[("side_by_side", strip)]
      )
      videos += [os.path.join(workdir, "generated", os.path.basename(p)) for p in paths.values()]
  report = os.path.join(report_dir, "report.html")
  stage("done in %.1f min", (time.time() - t0) / 60)
  return {
    "report": report,
    "metrics": os.path.join(report_dir, "metrics.json"),
    "verdicts": result["verdicts"],
    "summaries": result["summaries"],
    "videos": videos,
    "workdir": workdir,
  }


def main(argv):
  run_command("demo", argv, _main)


def _main():
  from me_fomm.commands.evaluate import format_summaries

  result = run(
    FLAGS.workdir,
    overwrite=FLAGS.overwrite,
    quick=FLAGS.quick,
    variant=FLAGS.variant,
    steps=FLAGS.steps,
    per_class=FLAGS.per_class,
    personalize_steps=FLAGS.personalize_steps,
  )
  print(format_summaries(result["summaries"]))
  for v in (result["verdicts"] or {}).values():
    print(("PASS  " if v["passed"] else "FAIL  ") + v["text"])
  print(f"videos:  {os.path.join(result['workdir'], 'generated')}")
  print(f"report:  {result['report']}")
  print(f"metrics: {result['metrics']}")
