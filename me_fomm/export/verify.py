"""Checks a written export against the JAX model on real frames of the embedded corpus.

The driving frames are a held-out clip of `synthetic_me/small` (built on the fly, a few seconds, or read
from `data_dir`), from its onset to its end; the target is the same motion's other identity at the onset,
so the check is a cross-identity animation as `me-fomm generate` runs it. The reference is
`me_fomm.generate.animate.Animator` on the same inputs; the export runs in its own runtime (JAX for
StableHLO, onnxruntime for ONNX), in batches of its fixed batch size, the last one padded.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile

import jax
import numpy as np

from me_fomm.data import sources
from me_fomm.data.clip import Clip
from me_fomm.export import graphs
from me_fomm.prior.inputs import keypoint_prior

CORPUS = "synthetic_me/small"
RESOLUTIONS = (64, 128, 256)  # synthetic_me's stored sizes
TOLERANCE = 1e-4  # float32


@contextlib.contextmanager
def _data_dir(data_dir: str | None):
  if data_dir:
    yield data_dir
    return
  tmp = tempfile.mkdtemp(prefix="me_fomm_verify_")
  try:
    yield tmp
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def corpus_clip(image_size: int, data_dir: str | None = None) -> Clip:
  """The first test clip of `synthetic_me/small` at `image_size` (built into `data_dir`, or a temporary
  folder, when not there yet)."""
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()  # a few seconds' build; its bars would bury the verification lines
  stored = next((r for r in RESOLUTIONS if r >= image_size), RESOLUTIONS[-1])
  with _data_dir(data_dir) as folder:
    sources.prepare(CORPUS, folder, image_size=stored)
    record = sources.load(CORPUS, folder, "test", image_size=stored)[0]
    return Clip.from_record(record, image_size)


def frames_to_check(clip: Clip, count: int) -> dict:
  """Target, `count` driving frames from the onset (first) to the clip's end through the apex, and their
  landmarks; float32 images in [0, 1], landmarks in px."""
  idx = np.unique(np.linspace(clip.onset, len(clip) - 1, count).round().astype(int))
  if clip.ground_truth is not None:
    target, target_lms = clip.ground_truth[clip.onset], clip.ground_truth_landmarks[clip.onset]
  else:
    target, target_lms = clip.frames[clip.onset], clip.landmarks[clip.onset]
  return {
    "target": target.astype(np.float32) / 255.0,
    "target_landmarks": np.asarray(target_lms, np.float32),
    "driving": clip.frames[idx].astype(np.float32) / 255.0,
    "driving_landmarks": np.asarray(clip.landmarks[idx], np.float32),
  }


def _batched(fn, inputs: dict, per_frame: tuple, batch: int | None) -> dict:
  """`fn` over the frames of the `per_frame` inputs, `batch` at a time (None: all at once), the last
  batch padded by repeating its last frame; outputs concatenated and cut back."""
  n = len(inputs[per_frame[0]])
  b = batch or n
  outs = []
  for i in range(0, n, b):
    chunk = dict(inputs)
    for k in per_frame:
      part = inputs[k][i : i + b]
      chunk[k] = np.concatenate([part, np.repeat(part[-1:], b - len(part), 0)])
    outs.append({k: v[: min(b, n - i)] for k, v in fn(chunk).items()})
  return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def run_export(exported, frames: dict) -> dict:
  """The export's outputs on `frames`: source keypoints, driving and transferred keypoints, prediction."""
  batch = exported.manifest["batch"]
  prior = "landmarks" in exported.manifest["functions"]["source"]["inputs"]
  images = np.stack([frames["target"], frames["driving"][0]])
  lms = np.stack([frames["target_landmarks"], frames["driving_landmarks"][0]])
  src_in = {"image": images, **({"landmarks": lms} if prior else {})}
  kp = _batched(exported.source, src_in, tuple(src_in), batch)
  anim_in = graphs.animate_inputs(
    kp,
    images[:1],
    frames["driving"],
    frames["driving_landmarks"] if prior else None,
    frames["driving_landmarks"][:1],
  )
  per_frame = ("driving", "driving_landmarks") if prior else ("driving",)
  out = _batched(exported.animate, anim_in, per_frame, batch)
  return {"kp_source": kp["kp_value"][0], "kp_source_jacobian": kp["kp_jacobian"][0], **out}


def run_reference(model, frames: dict) -> dict:
  """The same through `Animator` (what `me-fomm generate` runs), in float32."""
  from me_fomm.generate.animate import Animator

  cfg = graphs.export_config(model.config)
  animation = Animator(model.models, model.variables, cfg, batch_size=len(frames["driving"])).run(
    frames["target"],
    frames["driving"],
    frames["target_landmarks"],
    frames["driving_landmarks"],
    reference=0,
  )
  # The Animator keeps no Jacobians: the target's come from the keypoint detector itself.
  prior = keypoint_prior(cfg, frames["target_landmarks"][None], frames["target_landmarks"][None])
  detect = jax.jit(functools.partial(model.models.kp_detector.apply, train=False))
  jacobian = detect(model.variables["kp_detector"], frames["target"][None], prior=prior)["jacobian"]
  return {
    "kp_source": animation.kp_source,
    "kp_source_jacobian": np.asarray(jacobian)[0],
    "prediction": animation.prediction,
    "kp_driving": animation.kp_driving,
    "kp_norm": animation.kp_norm,
  }


def verify(model, exported, data_dir: str | None = None, count: int = 8) -> dict:
  """{'clip', 'frames', 'differences': {output: max abs difference}, 'max_abs_difference'}."""
  clip = corpus_clip(int(model.config.image_size), data_dir)
  frames = frames_to_check(clip, count)
  ours, ref = run_export(exported, frames), run_reference(model, frames)
  diffs = {k: float(np.max(np.abs(ours[k] - ref[k]))) for k in ref}
  return {
    "clip": f"{CORPUS}:{clip.name}",
    "frames": int(len(frames["driving"])),
    "differences": diffs,
    "max_abs_difference": max(diffs.values()),
  }
