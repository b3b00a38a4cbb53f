"""The generation job end to end, shared by `me-fomm generate`, `megc`, `evaluate` and `demo`.

load a checkpoint -> prepare the target photo and the driving clip (crop, landmarks) -> animate in compiled
batches -> write mp4 + GIF (and side-by-side / keypoint videos) into a staging folder that is moved into place
only when everything succeeded, so a failed run never leaves a half-written output folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile

import numpy as np

from me_fomm.data import images
from me_fomm.data.clip import Clip
from me_fomm.generate import video as video_lib
from me_fomm.generate.animate import Animation, Animator
from me_fomm.generate.target import Target, prepare_clip_frames

log = logging.getLogger(__name__)


class OutputExistsError(FileExistsError):
  """The output folder exists and --overwrite was not given."""


def check_output(out_dir: str, overwrite: bool) -> str:
  """Refuses an existing output unless `overwrite`; call before any work. Returns the absolute path."""
  if not out_dir:
    raise ValueError("no output folder given (--out)")
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir) and not overwrite:
    raise OutputExistsError(
      f"output folder {out_dir} already exists; pass --overwrite to replace it, or choose another --out"
    )
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise OutputExistsError(
      f"output {out_dir} exists and is a file, not a folder; remove it or choose another --out"
    )
  return out_dir


class OutputDiskFullError(ValueError):
  """The disk (or quota) ran full while writing an output folder; nothing half-written is left."""


def _free_space(folder: str) -> str:
  try:
    free = shutil.disk_usage(folder).free
  except OSError:
    return "unknown space"
  for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
    if free >= size:
      return f"{free / size:.1f} {unit}"
  return f"{free} bytes"


@contextlib.contextmanager
def staged_output(out_dir: str, overwrite: bool = False):
  """Yields a temporary folder beside `out_dir`; on success it replaces `out_dir`, on error it is removed.

  The final step is a rename within one parent folder, so readers see either the old or the new output.
  A full disk (ENOSPC/EDQUOT, from Python or ffmpeg) becomes one OutputDiskFullError naming the folder.
  """
  out_dir = check_output(out_dir, overwrite)
  parent = os.path.dirname(out_dir)
  previous = os.path.isdir(out_dir)
  tmp = None
  try:
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.partial-", dir=parent)
    yield tmp
    _move_into_place(tmp, out_dir, overwrite)
  except BaseException as e:
    if tmp is not None:
      shutil.rmtree(tmp, ignore_errors=True)
    if isinstance(e, Exception) and video_lib.disk_full(e):
      kept = "the previous output there is unchanged" if previous else "nothing was written there"
      raise OutputDiskFullError(
        f"disk full: no space left on the device while writing {out_dir}; the partial output was "
        f"removed and {kept}. {_free_space(parent)} free there now: free space and run the same "
        "command again"
      ) from e
    raise


def _move_into_place(tmp: str, out_dir: str, overwrite: bool) -> None:
  parent, name = os.path.split(out_dir)
  if not os.path.exists(out_dir):
    os.rename(tmp, out_dir)
    return
  if not overwrite:  # appeared while we worked
    raise OutputExistsError(
      f"output folder {out_dir} appeared while generating; nothing was replaced"
    )
  old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
  moved = os.path.join(old, "x")
  try:
    os.rename(out_dir, moved)
  except BaseException:
    os.rmdir(old)
    raise
  try:
    os.rename(tmp, out_dir)
  except BaseException:
    os.rename(moved, out_dir)  # the previous output back where it was
    os.rmdir(old)
    raise
  shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ model


@dataclasses.dataclass
class LoadedModel:
  models: object
  variables: dict
  config: object  # the model config
  checkpoint: str


def load_model(checkpoint: str, expect=None, step: int | None = None) -> LoadedModel:
  """Loads a checkpoint (DESIGN.md format) and builds its modules.

  Args:
    checkpoint: the checkpoint folder; a training workdir (with `checkpoints/` inside) also works.
    expect: a model config the checkpoint must match; a mismatch raises CheckpointError naming every
      differing key.
  """
  from me_fomm import checkpoint as ckpt
  from me_fomm.model import build_models

  if os.path.isdir(os.path.join(checkpoint, "checkpoints")):
    checkpoint = os.path.join(checkpoint, "checkpoints")
  cfg, variables = ckpt.load_models(checkpoint, step=step, expect=expect)
  # Shapes must fit the config the checkpoint claims (a hand-edited or truncated checkpoint fails here,
  # with the differing leaves named, instead of inside a compiled program).
  ckpt.check_compatible(cfg, variables, cfg)
  return LoadedModel(
    models=build_models(cfg), variables=variables, config=cfg, checkpoint=checkpoint
  )


def make_animator(
  model: LoadedModel,
  relative: bool = True,
  adapt_scale: bool = False,
  magnify: float = 1.0,
  batch_size: int = 32,
  regions=None,
) -> Animator:
  return Animator(
    model.models,
    model.variables,
    model.config,
    relative=relative,
    adapt_scale=adapt_scale,
    magnify=magnify,
    batch_size=batch_size,
    regions=regions,
  )


# ------------------------------------------------------------------------------------------------ inputs


def needs_landmarks(model_config) -> bool:
  return model_config.kp_mode == "prior"


def prepare_driving(
  clip: Clip,
  model_config,
  crop: bool = True,
  detector=None,
  need_landmarks: bool | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
  """Driving frames at the model's resolution (uint8 (T, S, S, 3)) and their landmarks (or None).

  Corpus clips are already face crops with stored landmarks: only resized, landmarks with the frames
  (`me_fomm.data.images.resize_with_points`). Files and folders are cropped like training clips (one box from
  the onset frame) unless `crop` is False.
  """
  size = int(model_config.image_size)
  need = needs_landmarks(model_config) if need_landmarks is None else need_landmarks
  if clip.landmark_driven:  # an AU clip, made for a target of the model's size
    return clip.frames, clip.landmarks
  if clip.landmarks is not None:
    return images.resize_with_points(clip.frames, clip.landmarks, size)
  return prepare_clip_frames(
    clip.frames,
    size,
    crop=crop,
    detector=detector,
    need_landmarks=need,
    reference=clip.onset,
    where=f"driving clip {clip.name!r}",
  )


def generate(
  animator: Animator,
  target: Target,
  clip: Clip,
  driving: np.ndarray,
  driving_landmarks: np.ndarray | None,
  progress: bool | str = True,
) -> Animation:
  """Runs the animator on prepared inputs, measuring motion from the clip's onset frame (an AU clip drives
  with its landmarks alone)."""
  return animator.run(
    target.image,
    None if clip.landmark_driven else driving,
    target_landmarks=target.landmarks,
    driving_landmarks=driving_landmarks,
    reference=clip.onset,
    progress=progress,
  )


def write_generation(
  out_dir: str,
  stem: str,
  animation: Animation,
  driving: np.ndarray,
  target_image: np.ndarray,
  fps: float,
  side_by_side: bool = False,
  draw_keypoints: bool = False,
) -> dict:
  """Writes `stem.mp4/.gif` and, on request, `stem_side_by_side.*` (driving | target | generated) and
  `stem_keypoints.*` (generated with the keypoints it was driven by). Returns the written paths."""
  generated = video_lib.as_uint8_frames(animation.prediction)
  extra = []
  if side_by_side or draw_keypoints:
    drv = video_lib.as_uint8_frames(driving)
    tgt = video_lib.as_uint8_frames(np.asarray(target_image)[None])
    gen = generated
    if draw_keypoints:
      drv = video_lib.draw_keypoints(drv, animation.kp_driving)
      tgt = video_lib.draw_keypoints(tgt, animation.kp_source)
      gen = video_lib.draw_keypoints(gen, animation.kp_norm)
    if side_by_side:
      extra.append(("side_by_side", video_lib.side_by_side(drv, tgt, gen)))
    else:
      extra.append(("keypoints", gen))
  paths = video_lib.write_outputs(out_dir, stem, generated, fps, extra=extra)
  if fps > video_lib.MAX_GIF_FPS:
    log.info(
      "%s: GIF written at %.0f fps (GIF delays cannot go below 20 ms); the mp4 keeps %.0f fps",
      stem,
      video_lib.gif_fps(fps),
      fps,
    )
  return paths
