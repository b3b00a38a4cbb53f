"""`me-fomm prepare`: convert a corpus to TFDS array_record files (no TensorFlow needed).

  me-fomm prepare --dataset=casme2 --manual_dir=/data/CASME2 --data_dir=~/tensorflow_datasets
  me-fomm prepare --dataset=smic/hs --image_size=128 --manual_dir=/data/SMIC --data_dir=...
  me-fomm prepare --dataset=synthetic_me/demo --image_size=64 --data_dir=...   (no download)

Shows a progress bar per split and ends with a report: clips written, clips skipped and why,
frames whose landmarks were borrowed from a neighbour. Bad clips are skipped and counted
unless --strict, which stops at the first one; a failed build leaves nothing that loads.
"""

from __future__ import annotations

import sys

from absl import app, flags

_DATASET = flags.DEFINE_string(
  "dataset",
  None,
  "casme2, samm, smic/hs, smic/vis, smic/nir, megc, custom, "
  "synthetic_me[/small|/demo|/full], or a full config name such as smic/hs_64.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "where the TFDS datasets are written.")
_MANUAL_DIR = flags.DEFINE_string(
  "manual_dir", None, "folder holding the hand-downloaded corpus (not for synthetic_me)."
)
_IMAGE_SIZE = flags.DEFINE_integer(
  "image_size", None, "output resolution (256, 128, 64); default: the config's."
)
_GRAYSCALE = flags.DEFINE_boolean(
  "grayscale", None, "store frames as gray (decoded to 3 channels)."
)
_MARGIN = flags.DEFINE_float("margin", None, "crop margin, fraction of the face box per side.")
_FRAME_FORMAT = flags.DEFINE_enum(
  "frame_format",
  None,
  ["png", "jpeg"],
  "frame encoding: png (lossless, default) or jpeg (quality 95, ~4x faster to decode).",
)
_WORKERS = flags.DEFINE_integer(
  "workers",
  0,
  "processes preprocessing clips in parallel (0: in this process); e.g. the number of CPU cores.",
)
_STRICT = flags.DEFINE_boolean(
  "strict", False, "fail on the first bad clip instead of skipping it."
)
_OVERWRITE = flags.DEFINE_boolean("overwrite", False, "rebuild even if the dataset is built.")


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _DATASET.value or not _DATA_DIR.value:
    raise app.UsageError("--dataset and --data_dir are required.")
  import tensorflow_datasets as tfds

  from me_fomm.data import sources

  tfds.disable_progress_bar()  # ours (per clip) is the one to show
  try:
    b, report, built_now = sources.prepare(
      _DATASET.value,
      _DATA_DIR.value,
      _MANUAL_DIR.value,
      _IMAGE_SIZE.value,
      _GRAYSCALE.value,
      _MARGIN.value,
      strict=_STRICT.value,
      progress=True,
      overwrite=_OVERWRITE.value,
      frame_format=_FRAME_FORMAT.value,
      workers=_WORKERS.value,
    )
  except (FileNotFoundError, ValueError) as e:  # ClipError is a ValueError
    print(f"me-fomm prepare: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"\n{b.name}/{b.builder_config.name} in {b.data_dir}")
  if not built_now:
    print("already built (use --overwrite to build again); its build report:")
  if report is None:
    print("no build report found.")
    return
  print(sources.report_summary(report))


if __name__ == "__main__":
  app.run(main)
