"""synthetic_me: micro-expression-like clips rendered from face photos shipped in packages.

No download. Two real photos that ship inside installed packages (scikit-image's `astronaut`
and matplotlib's `grace_hopper.jpg`) are the identities: one drives (its clips are in
`frames`), the other is held out and receives the very same motion (`ground_truth_frames`),
so cross-identity generation can be scored against the truth. Per class an action-unit
pattern (positive AU6+AU12; negative AU4+AU7 with AU14 or AU15+AU17; surprise
AU1+AU2+AU5+AU26) moves the landmarks 1-4 px at the apex at 256x256 (scaled with the
resolution), see `render.py`. dlib runs once per identity; every frame's landmarks follow
from the motion. Deterministic for a config (seed, sizes).

Splits: `train` and `test` are disjoint draws of motions (different seeds); both are driven
by the training identity, with the held-out identity as ground truth.
"""

from __future__ import annotations

import functools

import numpy as np

from me_fomm.data import images
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import preprocess as P
from me_fomm_datasets.synthetic_me import render

IDENTITIES = ("grace_hopper", "astronaut")
# Faces are rendered at least this large, then shrunk: sub-pixel motion at 64 px survives
# area-averaging better than warping a 64 px image.
RENDER_MIN = 256

# (train clips, test clips, min frames, max frames) per variant.
VARIANTS = {
  "small": dict(num_train=6, num_test=3, min_frames=8, max_frames=10),
  "demo": dict(num_train=48, num_test=12, min_frames=20, max_frames=40),
  "full": dict(num_train=300, num_test=60, min_frames=20, max_frames=40),
}


SYNTHETIC_MARGIN = 0.35  # a looser crop than the corpora: the photos show more than a face


def synthetic_config(
  variant: str = "demo",
  resolution: int = 64,
  grayscale: bool = False,
  margin: float = SYNTHETIC_MARGIN,
  seed: int = 0,
  train_identity: str = "grace_hopper",
  frame_format: str = "png",
  **overrides,
) -> B.ClipConfig:
  """A config; `overrides` replace num_train/num_test/min_frames/max_frames of the variant."""
  if variant not in VARIANTS:
    raise ValueError(f"synthetic_me variant must be one of {sorted(VARIANTS)}, got {variant!r}.")
  if train_identity not in IDENTITIES:
    raise ValueError(f"train_identity must be one of {IDENTITIES}, got {train_identity!r}.")
  unknown = set(overrides) - set(VARIANTS[variant])
  if unknown:
    raise ValueError(
      f"unknown synthetic_me options {sorted(unknown)}; known: {sorted(VARIANTS[variant])}."
    )
  opts = dict(VARIANTS[variant], **overrides, seed=seed, train_identity=train_identity)
  if not 6 <= opts["min_frames"] <= opts["max_frames"]:
    raise ValueError(
      f"need 6 <= min_frames <= max_frames, got {opts['min_frames']}, {opts['max_frames']}."
    )
  cfg = B.make_config(
    variant,
    resolution,
    grayscale,
    margin,
    default_margin=SYNTHETIC_MARGIN,
    frame_format=frame_format,
    **opts,
  )
  non_default = {k: v for k, v in overrides.items() if v != VARIANTS[variant][k]}
  if seed or train_identity != "grace_hopper" or non_default:
    extra = [f"s{seed}"] if seed else []
    extra += [train_identity] if train_identity != "grace_hopper" else []
    short = {"num_train": "train", "num_test": "test", "min_frames": "min", "max_frames": "max"}
    extra += [f"{short[k]}{v}" for k, v in sorted(non_default.items())]
    cfg.name = "_".join([cfg.name] + extra)
  return cfg


def identity_photo(name: str) -> np.ndarray:
  """uint8 RGB photo of an identity, read from the installed package that ships it."""
  if name == "astronaut":
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[..., :3])
  if name == "grace_hopper":
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return P.read_frame(str(path))
  raise ValueError(f"unknown identity {name!r}; known: {IDENTITIES}")


class SyntheticMe(B.ClipBuilder):
  """Synthetic micro-expressions with cross-identity ground truth (no download)."""

  name = "synthetic_me"
  CORPUS = "synthetic_me"
  GROUND_TRUTH = True
  DESCRIPTION = __doc__
  BUILDER_CONFIGS = [
    synthetic_config(v, r) for v in ("small", "demo", "full") for r in B.RESOLUTIONS
  ]
  DEFAULT_CONFIG_NAME = "demo_64"

  def _split_generators(self, dl_manager):
    specs = self._clip_specs(None)
    return {split: self._generate_examples(split, clips) for split, clips in specs.items()}

  def _clip_specs(self, manual_dir):
    o = self.builder_config.options
    train_id = o["train_identity"]
    held_out = [i for i in IDENTITIES if i != train_id][0]
    specs = {}
    for split_index, (split, count) in enumerate(
      (("train", o["num_train"]), ("test", o["num_test"]))
    ):
      clips = []
      for k in range(count):
        label = render.LABELS[k % len(render.LABELS)]
        clips.append(
          P.ClipSpec(
            clip_id=f"{split}_{k:04d}_{label}",
            subject=train_id,
            corpus=self.CORPUS,
            emotion="",
            label=label,
            action_units="",
            frame_paths=[],
            frame_numbers=[],
            fps=100.0,
            where=f"synthetic {split} #{k}",
            extra=dict(seed=(o["seed"], split_index, k), held_out=held_out),
          )
        )
      specs[split] = clips
    return specs

  @functools.cached_property
  def _faces(self) -> dict:
    """{identity: (square crop at render size, its 68 landmarks)}; dlib runs here only."""
    size = max(self.builder_config.resolution, RENDER_MIN)
    out = {}
    for name in IDENTITIES:
      photo = identity_photo(name)
      face = self.detector.detect(photo)
      if face is None:
        raise RuntimeError(
          f"synthetic_me: dlib found no face in the {name} photo; the "
          "installed scikit-image/matplotlib sample data may be damaged."
        )
      crop = images.crop_region(photo, images.square_box(face.box, self.builder_config.margin))
      crop = images.resize(crop, size)
      face = self.detector.detect(crop)
      if face is None:
        raise RuntimeError(
          f"synthetic_me: dlib lost the {name} face after cropping; use a smaller margin."
        )
      out[name] = (crop, np.asarray(face.landmarks, np.float64))
    return out

  def _before_workers(self) -> None:
    _ = self._faces  # dlib once, inherited by the forked workers

  def _encode(self, frames, landmarks):
    options = self.process_options
    out = [P.encode_output(f, options) for f in frames]
    return out, images.rescale_points(landmarks, frames[0].shape[0], options.resolution)

  def _process(self, spec: P.ClipSpec) -> dict:
    o = self.builder_config.options
    rng = np.random.default_rng(list(spec.extra["seed"]))
    num_frames = int(rng.integers(o["min_frames"], o["max_frames"] + 1))
    motion = render.sample_motion(rng, spec.label, num_frames)
    drive_img, drive_lm = self._faces[spec.subject]
    truth_img, truth_lm = self._faces[spec.extra["held_out"]]
    frames, lms = self._encode(*render.render_clip(drive_img, drive_lm, motion))
    gt_frames, gt_lms = self._encode(*render.render_clip(truth_img, truth_lm, motion))
    return P.clip_record(
      spec,
      frames,
      lms,
      motion.onset,
      motion.apex,
      motion.offset,
      corpus=self.CORPUS,
      emotion=motion.emotion,
      action_units="+".join(f"AU{a}" for a in motion.aus),
      identity=spec.subject,
      ground_truth_identity=spec.extra["held_out"],
      ground_truth_frames=gt_frames,
      ground_truth_landmarks=gt_lms,
    )


# TFDS convention: the module's builder is also reachable as `Builder`.
Builder = SyntheticMe
