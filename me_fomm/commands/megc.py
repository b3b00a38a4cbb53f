r"""`me-fomm megc`: the MEGC2021 / MEGC2022 generation protocol.

    me-fomm megc --checkpoint=runs/seed --protocol=megc2021 --targets=megc_targets/ \
        --data_dir=~/tensorflow_datasets --out=out/megc2021

Every target face (2 for megc2021, 4 for megc2022, the image files in --targets) is driven by each of the 9
source clips of the prepared `megc` dataset; outputs are named <target>_<class>_<clip>.mp4 / .gif.
"""

from __future__ import annotations

import logging

from me_fomm.commands._common import FLAGS, define, run_command

define(
  "string", "checkpoint", None, "Checkpoint folder (or a training workdir holding checkpoints/)."
)
define("string", "protocol", "megc2021", "megc2021 (2 targets) or megc2022 (4 targets).")
define("string", "targets", None, "Folder holding the target face photos (2 or 4 images).")
define(
  "string",
  "data_dir",
  None,
  "TFDS data dir where `me-fomm prepare --dataset=megc` wrote the sources.",
)
define("string", "out", None, "Output folder (created; refused if it exists unless --overwrite).")
define("bool", "overwrite", False, "Replace an existing output folder.")
define("integer", "batch_size", 32, "Frames per compiled batch.")
define(
  "bool", "no_crop", False, "The target photos are already aligned face crops: only resize them."
)
define("bool", "side_by_side", False, "Also write driving | target | generated.")
define(
  "bool",
  "draw_keypoints",
  False,
  "Draw the keypoints (on the side-by-side video, or a separate one).",
)
define(
  "bool", "absolute", False, "Absolute keypoints instead of motion relative to the onset frame."
)
define(
  "bool", "adapt_scale", False, "Scale the relative motion by the ratio of the keypoint hull areas."
)
define("float", "magnify", 1.0, "Motion magnification alpha (1 = as driven).")
define(
  "string",
  "config",
  None,
  "Refuse a checkpoint whose model config differs from this one (variant or config file).",
)

log = logging.getLogger("me_fomm.megc")


def run(
  checkpoint: str,
  protocol: str,
  targets: str,
  data_dir: str,
  out: str,
  overwrite: bool = False,
  config: str | None = None,
  source=None,
  **options,
):
  """Runs the protocol; `source` (random access over clip records) replaces reading --data_dir."""
  from me_fomm.generate import megc, pipeline

  if not checkpoint or not out:
    raise ValueError("--checkpoint and --out are required (see `me-fomm megc --help`)")
  target_paths = megc.list_targets(targets, protocol)
  pipeline.check_output(out, overwrite)
  if source is None:
    if not data_dir:
      raise ValueError(
        "--data_dir is required: the folder where `me-fomm prepare --dataset=megc` wrote "
        "the source clips"
      )
    source = megc.load_source(data_dir)
  clips = megc.select_sources(source)
  model = pipeline.load_model(checkpoint, expect=pipeline.expected_model_config(config))
  return megc.run_protocol(model, clips, target_paths, out, overwrite=overwrite, **options)


def main(argv):
  run_command("megc", argv, _main)


def _main():
  result = run(
    FLAGS.checkpoint,
    FLAGS.protocol,
    FLAGS.targets,
    FLAGS.data_dir,
    FLAGS.out,
    overwrite=FLAGS.overwrite,
    config=FLAGS.config,
    batch_size=FLAGS.batch_size,
    no_crop=FLAGS.no_crop,
    side_by_side=FLAGS.side_by_side,
    draw_keypoints=FLAGS.draw_keypoints,
    relative=not FLAGS.absolute,
    adapt_scale=FLAGS.adapt_scale,
    magnify=FLAGS.magnify,
  )
  print(f"{FLAGS.protocol}: wrote {len(result.files)} clips (mp4 + GIF) to {result.out}")
