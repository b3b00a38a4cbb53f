r"""`me-fomm megc`: the MEGC2021 / MEGC2022 generation protocol.

    me-fomm megc --checkpoint=runs/seed --protocol=megc2021 --targets=megc_targets/ \
        --data_dir=~/tensorflow_datasets --out=out/megc2021

Every target face (2 for megc2021, 4 for megc2022, the image files in --targets) is driven by each of the 9
source clips of the prepared `megc` dataset; outputs are named <target>_<class>_<clip>.mp4 / .gif.

    me-fomm megc --checkpoint=runs/demo/train --targets=megc_targets/ --au_templates --out=out/megc_au

`--au_templates` generates each class from its FACS codes instead of a source clip (no --data_dir; a tip24
checkpoint): <target>_<class>_<emotion>_au<codes>.mp4 / .gif, e.g. female_positive_happiness_au6+12.
"""

from __future__ import annotations

import logging

from me_fomm.commands import options as O

OPTIONS = (
  O.CHECKPOINT,
  O.string("protocol", "megc2021", "megc2021 (2 targets) or megc2022 (4 targets)."),
  O.string(
    "targets", None, "Folder holding the target face photos (2 or 4 images).", required=True
  ),
  O.string(
    "data_dir", None, "TFDS data dir where `me-fomm prepare --dataset=megc` wrote the sources."
  ),
  O.string(
    "out", None, "Output folder (created; refused if it exists unless --overwrite).", required=True
  ),
  O.boolean(
    "au_templates",
    False,
    "Generate each class from its AU codes (positive 6+12; negative 4+7+14, 4+7+15+17; surprise "
    "1+2+5+26) instead of the source clips; needs no --data_dir, and a tip24 checkpoint.",
  ),
  *O.AU_MOTION,
  O.real("fps", None, "Frame rate of the --au_templates clips (default 100)."),
  *O.GENERATION,
)

log = logging.getLogger("me_fomm.megc")


def run(opts, source=None, progress: bool = True):
  """Runs the protocol; `source` (random access over clip records) replaces reading --data_dir."""
  from me_fomm.commands import configs
  from me_fomm.generate import megc, pipeline

  O.check_generation(opts)
  target_paths = megc.list_targets(opts.targets, opts.protocol)
  pipeline.check_output(opts.out, opts.overwrite)
  if opts.au_templates:
    clips = megc.au_templates(opts.au_model, opts.intensity, opts.duration_ms, opts.fps)
  else:
    if source is None:
      if not opts.data_dir:
        raise ValueError(
          "--data_dir is required: the folder where `me-fomm prepare --dataset=megc` wrote the "
          "source clips (or pass --au_templates to generate each class from its AU codes)"
        )
      source = megc.load_source(opts.data_dir)
    clips = megc.select_sources(source)
  expect = configs.expected_model_config(opts.config)
  model = pipeline.load_model(opts.checkpoint, expect=expect, step=opts.step)
  return megc.run_protocol(
    model,
    clips,
    target_paths,
    opts.out,
    overwrite=opts.overwrite,
    batch_size=opts.batch_size,
    no_crop=opts.no_crop,
    side_by_side=opts.side_by_side,
    draw_keypoints=opts.draw_keypoints,
    relative=not opts.absolute,
    adapt_scale=opts.adapt_scale,
    magnify=opts.magnify,
    progress=progress,
    regions=opts.regions,
  )


def show(result) -> None:
  print(f"wrote {len(result.files)} clips (mp4 + GIF) to {result.out}")
