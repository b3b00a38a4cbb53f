r"""`me-fomm export`: a checkpoint as two deployable functions, StableHLO or ONNX, checked against JAX.

    me-fomm export --checkpoint=runs/demo/train --format=onnx --out=exports/demo --verify
    me-fomm export --checkpoint=runs/demo/train --format=stablehlo --out=exports/demo --batch=8

Writes `OUT.source.<ext>` (keypoints of an image), `OUT.animate.<ext>` (one target, a batch of driving
frames) and `OUT.json` (their inputs and outputs; see `me_fomm.export.graphs`). StableHLO is a serialised
`jax.export` (load with `jax.export.deserialize`); ONNX needs `pip install -e '.[export]'`. The batch axis
is symbolic unless `--batch` fixes it. `--verify` runs the written files (JAX for StableHLO, onnxruntime for
ONNX) on frames of the embedded corpus and prints `max abs difference <x>` against the JAX model last.
"""

from __future__ import annotations

import logging

from me_fomm.commands import options as O

OPTIONS = (
  O.CHECKPOINT,
  O.enum("format", None, ["stablehlo", "onnx"], "stablehlo (jax.export) or onnx (jax2onnx)."),
  O.string(
    "out",
    None,
    "Path of the export without extension: writes OUT.source.<ext>, OUT.animate.<ext> and "
    "OUT.json (a trailing .onnx or .stablehlo is dropped).",
    required=True,
  ),
  O.integer("batch", None, "Fix the batch size (default: a symbolic batch axis)."),
  O.boolean(
    "verify", False, "Run the written export on corpus frames and compare it with the JAX model."
  ),
  O.string(
    "data_dir",
    None,
    "With --verify: a TFDS data dir holding (or to hold) synthetic_me/small (default: built in a "
    "temporary folder, a few seconds).",
  ),
  O.STEP,
  O.OVERWRITE,
)

log = logging.getLogger("me_fomm.export")


def run(opts) -> dict:
  """Exports (and verifies); returns the manifest with `files` and, with --verify, `verify`."""
  from me_fomm import checkpoint, export
  from me_fomm.export import verify
  from me_fomm.generate import pipeline

  if opts.format is None:
    raise ValueError("--format is required: stablehlo or onnx")
  export.check_request(opts.format, opts.batch)
  export.check_output(opts.out, opts.format, opts.overwrite)
  model = pipeline.load_model(opts.checkpoint, step=opts.step)
  step = opts.step if opts.step is not None else checkpoint.latest_step(model.checkpoint)
  export.graphs.export_config(model.config)  # a model the export does not cover fails here
  log.info("exporting %s (%s variant) as %s", model.checkpoint, model.config.variant, opts.format)
  result = export.export(
    model,
    opts.format,
    opts.out,
    batch=opts.batch,
    overwrite=opts.overwrite,
    source_info={"checkpoint": model.checkpoint, "step": step},
  )
  if opts.verify:
    log.info("verifying against the JAX model on %s frames", verify.CORPUS)
    exported = export.load(result["files"]["manifest"])
    result["verify"] = verify.verify(model, exported, data_dir=opts.data_dir)
    if result["verify"]["max_abs_difference"] > verify.TOLERANCE:
      show(result)
      raise O.CommandError(
        f"the export differs from the JAX model by more than {verify.TOLERANCE:g}: "
        f"max abs difference {result['verify']['max_abs_difference']:.3g}"
      )
  return result


def show(result: dict) -> None:
  batch = result["batch"] if result["batch"] is not None else "B (symbolic)"
  opset = f", opset {result['opset']}" if result.get("opset") else ""
  print(f"exported {result['format']}{opset}, batch {batch}:")
  for path in result["files"].values():
    print(f"  {path}")
  check = result.get("verify")
  if check:
    print(f"verified on {check['frames']} frames of {check['clip']}:")
    for name, diff in check["differences"].items():
      print(f"  {name}: {diff:.3g}")
    print(f"max abs difference {check['max_abs_difference']:.3g}")
