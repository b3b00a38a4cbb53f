r"""`me-fomm augment`: generated cross-identity clips of a corpus, as a TFDS dataset for recognition.

    me-fomm augment --checkpoint=runs/seed/checkpoints --dataset=megc --data_dir=~/tensorflow_datasets \
        --targets_per_clip=2 --out=runs/augmented
    me-fomm recognize --dataset=megc --data_dir=~/tensorflow_datasets --augment=runs/augmented --out=...

Every clip of the three MEGC2019 classes drives the onset frames of `--targets_per_clip` other subjects
(one clip each, drawn at random); the generated clip keeps the driving clip's label, phases and AUs, and
records whose motion and whose face it shows (`driving_subject`, `target_subject`: see
datasets/augmented). `--out` becomes the data_dir of the `augmented` dataset at the model's resolution,
loadable with `me_fomm.data.sources.load('augmented/<size>', out)`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

import numpy as np

from me_fomm.commands import options as O

OPTIONS = (
  O.CHECKPOINT,
  O.string(
    "dataset", None, "Dataset whose clips drive (megc, casme2, samm, smic/hs, ...).", required=True
  ),
  O.string("data_dir", None, "TFDS data dir of --dataset.", required=True),
  O.string("split", "train", "Split to generate from (the corpora have one: train)."),
  O.integer("targets_per_clip", 1, "Other subjects' faces each clip drives."),
  O.string(
    "out",
    None,
    "Output folder: the data_dir of the generated `augmented` dataset (refused if it exists unless "
    "--overwrite).",
    required=True,
  ),
  O.integer("image_size", None, "Stored resolution of --dataset to read (default: its default)."),
  O.integer("max_clips", 0, "At most this many driving clips (0 = all)."),
  O.integer("seed", 0, "Which targets each clip drives."),
  O.BATCH_SIZE,
  O.OVERWRITE,
  O.EXPECT_CONFIG,
  O.STEP,
)

log = logging.getLogger("me_fomm.augment")


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def target_face(record: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
  """A clip's onset frame at size x size (uint8) and its 68 landmarks there."""
  from me_fomm.data import images

  onset = int(record.get("onset", 0))
  frame = images.decode_frame(bytes(record["frames"][onset]))
  lms = np.asarray(record["landmarks"], np.float32)[onset]
  frames, points = images.resize_with_points(frame[None], lms[None], size)
  return frames[0], points[0]


def run(opts, progress: bool = True) -> dict:
  """Generates and builds the dataset; returns {'out', 'dataset', 'clips', 'driving_clips', ...}."""
  from me_fomm.commands import configs
  from me_fomm.data import sources, vocab
  from me_fomm.data.clip import Clip
  from me_fomm.data.folds import subject_key
  from me_fomm.generate import pipeline
  from me_fomm.generate import video as video_lib
  from me_fomm.recognize import augmentation
  from me_fomm.recognize.metrics import CLASSES

  if opts.targets_per_clip < 1:
    raise ValueError(f"--targets_per_clip must be >= 1, got {opts.targets_per_clip}")
  if opts.max_clips < 0:
    raise ValueError(f"--max_clips must be >= 0 (0 = all), got {opts.max_clips}")
  if opts.batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {opts.batch_size}")
  out = pipeline.check_output(opts.out, opts.overwrite)
  source = sources.load(opts.dataset, opts.data_dir, opts.split, image_size=opts.image_size)
  meta = sources.metadata(source)
  keys = [subject_key(m) for m in meta]
  plan = augmentation.plan_targets(keys, opts.targets_per_clip, opts.seed)
  drivers = [i for i, m in enumerate(meta) if vocab.label_name(m["label"]) in CLASSES]
  if opts.max_clips:
    drivers = drivers[: opts.max_clips]
  if not drivers:
    raise ValueError(
      f"{opts.dataset}: no clip of the classes {', '.join(CLASSES)} to generate from"
    )
  model = pipeline.load_model(
    opts.checkpoint, expect=configs.expected_model_config(opts.config), step=opts.step
  )
  size = int(model.config.image_size)
  animator = pipeline.make_animator(model, batch_size=opts.batch_size)
  t0 = time.time()
  items = [(i, j) for i in drivers for j in plan[i]]
  bar = None
  if progress:
    import tqdm

    bar = tqdm.tqdm(total=len(items), desc="generating", unit="clip", leave=False)
  with pipeline.staged_output(out, opts.overwrite) as tmp:
    staging = augmentation.Staging(os.path.join(tmp, "staging"))
    for i in drivers:
      record = source[i]
      clip = Clip.from_record(record, image_size=size)
      if clip.landmarks is None:
        raise ValueError(f"{opts.dataset}: clip {clip.name} has no landmarks; rebuild the dataset")
      motion = clip.landmarks - clip.landmarks[clip.onset]
      for j in plan[i]:
        target = source[j]
        face, face_lms = target_face(target, size)
        generated = animator.run(
          face, clip.frames, face_lms, clip.landmarks, reference=clip.onset
        ).prediction
        target_name = f"{_text(target['corpus'])}_{_text(target['clip_id'])}".replace("/", "_")
        entry = {
          "clip_id": f"{clip.corpus}_{clip.clip_id}_on_{target_name}".replace("/", "_"),
          "subject": _text(target["subject"]),
          "corpus": _text(target["corpus"]),
          "label": clip.label,
          "emotion": _text(record.get("emotion", "")),
          "action_units": _text(record.get("action_units", "")),
          "onset": clip.onset,
          "apex": clip.apex if clip.apex is not None else (clip.onset + len(clip) - 1) // 2,
          "offset": clip.offset if clip.offset is not None else len(clip) - 1,
          "apex_estimated": bool(record.get("apex_estimated", False)),
          "fps": clip.fps,
          "driving_subject": keys[i],
          "driving_clip_id": clip.clip_id,
          "driving_corpus": clip.corpus,
          "target_subject": keys[j],
          "target_clip_id": _text(target["clip_id"]),
        }
        # The landmarks the model was asked to produce: the target's, moved as the driving clip's.
        staging.add(entry, video_lib.as_uint8_frames(generated), face_lms[None] + motion)
        if bar is not None:
          bar.update(1)
    staging.close()
    if bar is not None:
      bar.close()
    seconds = time.time() - t0
    b, report, _ = sources.prepare("augmented", tmp, manual_dir=staging.folder, image_size=size)
    shutil.rmtree(staging.folder)
    downloads = os.path.join(tmp, "downloads")  # TFDS's empty download folder: nothing was fetched
    if os.path.isdir(downloads) and not any(files for _, _, files in os.walk(downloads)):
      shutil.rmtree(downloads)
  return {
    "out": out,
    "dataset": f"augmented/{b.builder_config.name}",
    "clips": int(sum(report["written"].values())) if report else len(items),
    "driving_clips": len(drivers),
    "targets_per_clip": opts.targets_per_clip,
    "generation_seconds": round(seconds, 1),
    "source": opts.dataset,
    "data_dir": opts.data_dir,
  }


def show(result: dict) -> None:
  print(
    f"wrote {result['clips']} generated clips ({result['driving_clips']} driving clips x up to "
    f"{result['targets_per_clip']} targets, {result['generation_seconds']:g} s) as "
    f"{result['dataset']} in {result['out']}"
  )
  print(
    f"compare: me-fomm recognize --dataset={result['source']} --data_dir={result['data_dir']} "
    f"--augment={result['out']} --out=<folder>"
  )
