"""One entry for every benchmark: prints one JSON line per measurement.

    python -m benchmarks.run --what=train --config=demo --batch=8
    python -m benchmarks.run --what=train --config=fomm_vox --batch=40 \
        --config.model.dtype=bfloat16
    python -m benchmarks.run --what=generate --config=fomm_vox --batch=32
    python -m benchmarks.run --what=data --config=demo --batch=8
    python -m benchmarks.run --what=train --config=demo --batch=8 --config.remat=True
    python -m benchmarks.run --what=bf16 --config=demo --batch=4 --steps=20

`--config` names a built-in training config (demo, fomm_vox, seed, tip24) or a config file, as
`me-fomm train`. Each `benchmarks/<what>.py` has `run(config, batch, steps, warmup) -> list[dict]` and may use the
measuring helpers of `benchmarks.measure` (`device_info`, `peak_memory`, `compiled_flops`, `time_steps`). Every line
carries the figure and its unit, step time, compile time, peak memory, the device and, where XLA
reports it, the FLOPs per step from its cost analysis and the achieved TFLOP/s.
"""

from __future__ import annotations

import importlib
import json
import sys

import ml_collections

from benchmarks.measure import device_info
from me_fomm.commands import options as O

OPTIONS = (
  O.enum(
    "what",
    "train",
    ["train", "generate", "data", "bf16"],
    "What to measure (bf16: float32 vs bfloat16 training and generation).",
  ),
  O.TRAINING_CONFIG,
  O.integer("batch", None, "Global batch size (default: the config's)."),
  O.integer("steps", 10, "Timed steps per repeat."),
  O.integer("repeats", 3, "Timed repeats; the median is reported."),
  O.integer("warmup", 2, "Untimed steps after compilation."),
)


def print_rows(what: str, config, batch: int, rows) -> None:
  for row in rows:
    line = {"what": what, "config": config.get("name", "?"), "batch": batch, **device_info(), **row}
    print(json.dumps(line), flush=True)


def main(opts) -> None:
  # The benchmarks set fields (the batch) on their copy of the config.
  config = ml_collections.ConfigDict(opts.config.to_dict())
  batch = opts.batch or config.batch_size
  module = importlib.import_module(f"benchmarks.{opts.what}")
  rows = module.run(config, batch=batch, steps=opts.steps, warmup=opts.warmup, repeats=opts.repeats)
  print_rows(opts.what, config, batch, rows)


def script(options, body) -> None:
  """`python -m benchmarks.<name>`: `options` parsed once into a ConfigDict, then `body(opts)`."""
  O.script("benchmarks", options, lambda argv: body(O.read(options)), sys.argv)


if __name__ == "__main__":
  script(OPTIONS, main)
