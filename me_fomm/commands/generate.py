r"""`me-fomm generate`: drive a target face with a micro-expression clip or FACS action units; mp4 and GIF.

    me-fomm generate --checkpoint=runs/seed/checkpoints --target=face.jpg \
        --driving=casme2:sub01/EP02_01f --data_dir=~/tensorflow_datasets --out=out/face_EP02
    me-fomm generate --checkpoint=runs/demo/train --target=face.jpg --au=4+7 --intensity=1.0 \
        --duration_ms=300 --fps=100 --out=out/face_au4+7

The target is any photo: dlib finds the face and crops it as the training clips were cropped (`--no_crop` for
an aligned face crop). The driving clip is a video file, a folder of frames, or a corpus clip. Motion is
transferred relative to the clip's onset frame unless `--absolute`.

With `--au` instead of `--driving` there is no clip: the target's own landmarks are moved by the AU motion
model (`--au_model`, default: patterns written from FACS) through onset, apex and offset, duration x fps
frames, and drive the per-frame prior keypoints of a tip24 checkpoint. `--regions=mouth,brows` keeps the
motion (and `--magnify`) in those regions, with a clip or with AUs.
"""

from __future__ import annotations

import logging
import os

from me_fomm.commands import options as O

OPTIONS = (
  O.CHECKPOINT,
  O.string("target", None, "Photo of the face to animate (PNG/JPEG).", required=True),
  O.string(
    "driving",
    None,
    "Driving clip: a video file, a folder of frames, or corpus:clip (casme2:sub01/EP02_01f).",
  ),
  O.string(
    "au",
    None,
    "FACS action units to drive with instead of a clip, e.g. 4+7 (tip24 checkpoints).",
  ),
  *O.AU_MOTION,
  O.string(
    "out", None, "Output folder (created; refused if it exists unless --overwrite).", required=True
  ),
  O.DATA_DIR,
  O.real(
    "fps", None, "Output frame rate (default: the clip's; 25 for a frame folder; 100 with --au)."
  ),
  O.real(
    "margin", 0.2, "Face crop margin per side, as a fraction of the face size (training: 0.2)."
  ),
  *O.GENERATION,
)

log = logging.getLogger("me_fomm.generate")


def run(opts, progress: bool = True) -> dict:
  """Generates one clip; returns {'out': folder, 'frames': T, 'fps': fps, 'files': {...}}.

  Every input is checked before the output folder is touched; the output appears only when complete.
  """
  from me_fomm.commands import configs
  from me_fomm.generate import driving as driving_lib
  from me_fomm.generate import pipeline, video
  from me_fomm.generate import target as target_lib
  from me_fomm.generate.animate import check_landmark_driving

  O.check_generation(opts)
  if bool(opts.driving) == bool(opts.au):
    raise ValueError(
      "give a driving clip (--driving) or FACS action units (--au=4+7)"
      + (", not both" if opts.driving else "")
    )
  out = pipeline.check_output(opts.out, opts.overwrite)
  photo = video.read_image(opts.target)
  if opts.au:
    au = driving_lib.AuMotion.parse(
      opts.au, opts.au_model, opts.intensity, opts.duration_ms, opts.fps
    )
  else:
    clip = driving_lib.read_clip(opts.driving, data_dir=opts.data_dir, fps=opts.fps)
  expect = configs.expected_model_config(opts.config)
  model = pipeline.load_model(opts.checkpoint, expect=expect, step=opts.step)
  cfg = model.config
  if opts.au:
    check_landmark_driving(cfg)
  detector = None
  if not opts.no_crop or pipeline.needs_landmarks(cfg):
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  tgt = target_lib.prepare_target(
    photo,
    int(cfg.image_size),
    crop=not opts.no_crop,
    detector=detector,
    need_landmarks=pipeline.needs_landmarks(cfg),
    margin=opts.margin,
    where=f"--target={opts.target}",
  )
  if opts.au:
    clip = au.clip(tgt, regions=opts.regions)
  drv, drv_lms = pipeline.prepare_driving(clip, cfg, crop=not opts.no_crop, detector=detector)
  animator = pipeline.make_animator(
    model,
    relative=not opts.absolute,
    adapt_scale=opts.adapt_scale,
    magnify=opts.magnify,
    batch_size=opts.batch_size,
    regions=opts.regions,
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
  stem = f"{os.path.splitext(os.path.basename(opts.target))[0]}_{clip.name}"
  with pipeline.staged_output(out, opts.overwrite) as tmp:
    files = pipeline.write_generation(
      tmp,
      stem,
      animation,
      drv,
      tgt.image,
      clip.fps,
      side_by_side=opts.side_by_side,
      draw_keypoints=opts.draw_keypoints,
    )
  files = {k: os.path.join(out, os.path.basename(v)) for k, v in files.items()}
  return {"out": out, "frames": int(len(drv)), "fps": clip.fps, "files": files}


def show(result: dict) -> None:
  print(f"wrote {result['frames']} frames at {result['fps']:g} fps to {result['out']}:")
  for path in result["files"].values():
    print(f"  {path}")
