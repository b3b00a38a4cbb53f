"""`me-fomm prepare`: convert a corpus to TFDS array_record files (no TensorFlow needed).

  me-fomm prepare --dataset=casme2 --manual_dir=/data/CASME2 --data_dir=~/tensorflow_datasets
  me-fomm prepare --dataset=smic/hs --image_size=128 --manual_dir=/data/SMIC --data_dir=...
  me-fomm prepare --dataset=synthetic_me/demo --image_size=64 --data_dir=...   (no download)

Shows a progress bar per split and ends with a report: clips written, clips skipped and why,
frames whose landmarks were borrowed from a neighbour. Bad clips are skipped and counted
unless --strict, which stops at the first one; a failed build leaves nothing that loads.
A build whose files were damaged later (a truncated or corrupt shard) is rebuilt in place with
the same command plus --overwrite.
"""

from __future__ import annotations

from me_fomm.commands import options as O

OPTIONS = (
  O.string(
    "dataset",
    None,
    "casme2, samm, smic/hs, smic/vis, smic/nir, megc, custom, synthetic_me[/small|/demo|/full], or "
    "a full config name such as smic/hs_64.",
    required=True,
  ),
  O.string("data_dir", None, "where the TFDS datasets are written.", required=True),
  O.string("manual_dir", None, "folder holding the hand-downloaded corpus (not for synthetic_me)."),
  O.integer("image_size", None, "output resolution (256, 128, 64); default: the config's."),
  O.boolean("grayscale", None, "store frames as gray (decoded to 3 channels)."),
  O.real("margin", None, "crop margin, fraction of the face box per side."),
  O.enum(
    "frame_format",
    None,
    ["png", "jpeg"],
    "frame encoding: png (lossless, default) or jpeg (quality 95, ~4x faster to decode).",
  ),
  O.integer(
    "workers",
    0,
    "processes preprocessing clips in parallel (0: in this process); e.g. the number of CPU cores.",
  ),
  O.boolean("strict", False, "fail on the first bad clip instead of skipping it."),
  O.boolean(
    "overwrite",
    False,
    "rebuild even if the dataset is built: its version folder (only that one) is removed first, "
    "damaged or not; what a damaged-shard error asks for.",
  ),
)


def run(opts) -> dict:
  """Builds the dataset (unless built already); returns {'builder', 'report', 'built_now'}."""
  import tensorflow_datasets as tfds

  from me_fomm.data import sources

  tfds.disable_progress_bar()  # ours (per clip) is the one to show
  b, report, built_now = sources.prepare(
    opts.dataset,
    opts.data_dir,
    opts.manual_dir,
    opts.image_size,
    opts.grayscale,
    opts.margin,
    strict=opts.strict,
    progress=True,
    overwrite=opts.overwrite,
    frame_format=opts.frame_format,
    workers=opts.workers,
  )
  return {"builder": b, "report": report, "built_now": built_now}


def show(result: dict) -> None:
  from me_fomm.data import sources

  b, report = result["builder"], result["report"]
  print(f"\n{b.name}/{b.builder_config.name} in {b.data_dir}")
  if not result["built_now"]:
    print("already built (use --overwrite to build again); its build report:")
  print(sources.report_summary(report) if report is not None else "no build report found.")
