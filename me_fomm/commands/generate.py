r"""`me-fomm generate`: drive a target face with a micro-expression clip; writes mp4 and GIF.

    me-fomm generate --checkpoint=runs/seed/checkpoints --target=face.jpg \
        --driving=casme2:sub01/EP02_01f --data_dir=~/tensorflow_datasets --out=out/face_EP02

The target is any photo: dlib finds the face and crops it as the training clips were cropped (`--no_crop` for
an aligned face crop). The driving clip is a video file, a folder of frames, or a corpus clip. Motion is
transferred relative to the clip's onset frame unless `--absolute`.
"""

from __future__ import annotations

import logging
import os

from me_fomm.commands._common import FLAGS, define, run_command

define(
  "string", "checkpoint", None, "Checkpoint folder (or a training workdir holding checkpoints/)."
)
define("string", "target", None, "Photo of the face to animate (PNG/JPEG).")
define(
  "string",
  "driving",
  None,
  "Driving clip: a video file, a folder of frames, or corpus:clip (casme2:sub01/EP02_01f).",
)
define("string", "out", None, "Output folder (created; refused if it exists unless --overwrite).")
define("string", "data_dir", None, "TFDS data dir for corpus driving clips.")
define(
  "bool",
  "no_crop",
  False,
  "The target (and a file/folder driving clip) are already aligned face crops: only resize them.",
)
define(
  "bool", "absolute", False, "Absolute keypoints instead of motion relative to the onset frame."
)
define(
  "bool", "adapt_scale", False, "Scale the relative motion by the ratio of the keypoint hull areas."
)
define("float", "magnify", 1.0, "Motion magnification alpha (1 = as driven).")
define("bool", "side_by_side", False, "Also write driving | target | generated.")
define(
  "bool",
  "draw_keypoints",
  False,
  "Draw the keypoints (on the side-by-side video, or a separate one).",
)
define("integer", "batch_size", 32, "Frames per compiled batch.")
define("float", "fps", None, "Output frame rate (default: the clip's; 25 for a frame folder).")
define("bool", "overwrite", False, "Replace an existing output folder.")
define(
  "string",
  "config",
  None,
  "Refuse a checkpoint whose model config differs from this one: a variant "
  "(seed, fomm, tip24) or a config file (experiments/configs/seed.py).",
)
define("integer", "step", None, "Checkpoint step (default: the latest).")
define(
  "float",
  "margin",
  0.2,
  "Face crop margin per side, as a fraction of the face size (training: 0.2).",
)

log = logging.getLogger("me_fomm.generate")


def run(
  checkpoint: str,
  target: str,
  driving: str,
  out: str,
  data_dir: str | None = None,
  no_crop: bool = False,
  absolute: bool = False,
  adapt_scale: bool = False,
  magnify: float = 1.0,
  side_by_side: bool = False,
  draw_keypoints: bool = False,
  batch_size: int = 32,
  fps: float | None = None,
  overwrite: bool = False,
  config: str | None = None,
  step: int | None = None,
  margin: float = 0.2,
  progress: bool = True,
) -> dict:
  """Generates one clip; returns {'out': folder, 'frames': T, 'fps': fps, 'files': {...}}.

  Every input is checked before the output folder is touched; the output appears only when complete.
  """
  from me_fomm.generate import driving as driving_lib
  from me_fomm.generate import pipeline, video
  from me_fomm.generate import target as target_lib

  for name, value in (
    ("--checkpoint", checkpoint),
    ("--target", target),
    ("--driving", driving),
    ("--out", out),
  ):
    if not value:
      raise ValueError(f"{name} is required (see `me-fomm generate --help`)")
  if batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
  if not magnify > 0:
    raise ValueError(f"--magnify must be > 0 (1 = motion as driven), got {magnify}")
  out = pipeline.check_output(out, overwrite)
  photo = video.read_image(target)
  clip = driving_lib.read_clip(driving, data_dir=data_dir, fps=fps)
  model = pipeline.load_model(checkpoint, expect=pipeline.expected_model_config(config), step=step)
  cfg = model.config
  detector = None
  if not no_crop or pipeline.needs_landmarks(cfg):
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  tgt = target_lib.prepare_target(
    photo,
    int(cfg.image_size),
    crop=not no_crop,
    detector=detector,
    need_landmarks=pipeline.needs_landmarks(cfg),
    margin=margin,
    where=f"--target={target}",
  )
  drv, drv_lms = pipeline.prepare_driving(clip, cfg, crop=not no_crop, detector=detector)
  animator = pipeline.make_animator(
    model, relative=not absolute, adapt_scale=adapt_scale, magnify=magnify, batch_size=batch_size
  )
  log.info(
    "animating %d frames of %s at %dx%d (batch %d)",
    len(drv),
    clip.name,
    cfg.image_size,
    cfg.image_size,
    animator.batch_for(len(drv)),
  )
  animation = pipeline.generate(
    animator, tgt, clip, drv, drv_lms, progress=f"generating {clip.name}" if progress else False
  )
  stem = f"{os.path.splitext(os.path.basename(target))[0]}_{clip.name}"
  with pipeline.staged_output(out, overwrite) as tmp:
    files = pipeline.write_generation(
      tmp,
      stem,
      animation,
      drv,
      tgt.image,
      clip.fps,
      side_by_side=side_by_side,
      draw_keypoints=draw_keypoints,
    )
  files = {k: os.path.join(out, os.path.basename(v)) for k, v in files.items()}
  return {"out": out, "frames": int(len(drv)), "fps": clip.fps, "files": files}


def main(argv):
  run_command("generate", argv, _main)


def _main():
  result = run(
    FLAGS.checkpoint,
    FLAGS.target,
    FLAGS.driving,
    FLAGS.out,
    data_dir=FLAGS.data_dir,
    no_crop=FLAGS.no_crop,
    absolute=FLAGS.absolute,
    adapt_scale=FLAGS.adapt_scale,
    magnify=FLAGS.magnify,
    side_by_side=FLAGS.side_by_side,
    draw_keypoints=FLAGS.draw_keypoints,
    batch_size=FLAGS.batch_size,
    fps=FLAGS.fps,
    overwrite=FLAGS.overwrite,
    config=FLAGS.config,
    step=FLAGS.step,
    margin=FLAGS.margin,
  )
  print(f"wrote {result['frames']} frames at {result['fps']:g} fps to {result['out']}:")
  for path in result["files"].values():
    print(f"  {path}")
