"""One entry for every benchmark: prints one JSON line per measurement.

    python -m benchmarks.run --what=train --config=experiments/configs/demo.py --batch=8
    python -m benchmarks.run --what=train --config=experiments/configs/fomm_vox.py --batch=40 \
        --config.model.dtype=bfloat16
    python -m benchmarks.run --what=generate --config=experiments/configs/fomm_vox.py --batch=32
    python -m benchmarks.run --what=data --config=experiments/configs/demo.py --batch=8
    python -m benchmarks.run --what=train --config=experiments/configs/demo.py --batch=8 --config.remat=True
    python -m benchmarks.run --what=bf16 --config=experiments/configs/demo.py --batch=4 --steps=20

Each `benchmarks/<what>.py` has `run(config, batch, steps, warmup) -> list[dict]` and may use the
measuring helpers of `benchmarks.measure` (`device_info`, `peak_memory`, `compiled_flops`, `time_steps`). Every line
carries the figure and its unit, step time, compile time, peak memory, the device and, where XLA
reports it, the FLOPs per step from its cost analysis and the achieved TFLOP/s.
"""

from __future__ import annotations

import importlib
import json
import sys

from absl import app, flags
from ml_collections import config_flags

from benchmarks.measure import device_info

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The shared flags (--what, --config, --batch, --steps, --repeats, --warmup), defined once.

  Under `python -m benchmarks.run` this module runs as `__main__`; a later `import benchmarks.run`
  (a benchmark's standalone entry reuses these flags) must not define them a second time.
  """
  if "what" in FLAGS:
    return
  flags.DEFINE_enum(
    "what",
    "train",
    ["train", "generate", "data", "bf16"],
    "What to measure (bf16: float32 vs bfloat16 training and generation).",
  )
  config_flags.DEFINE_config_file(
    "config",
    None,
    "Training config file (experiments/configs/*.py[:arg]); override fields with --config.x=y.",
    lock_config=False,
  )
  flags.DEFINE_integer("batch", None, "Global batch size (default: the config's).")
  flags.DEFINE_integer("steps", 10, "Timed steps per repeat.")
  flags.DEFINE_integer("repeats", 3, "Timed repeats; the median is reported.")
  flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
  flags.mark_flag_as_required("config")


define_flags()


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  config = FLAGS.config
  batch = FLAGS.batch or config.batch_size
  module = importlib.import_module(f"benchmarks.{FLAGS.what}")
  rows = module.run(
    config, batch=batch, steps=FLAGS.steps, warmup=FLAGS.warmup, repeats=FLAGS.repeats
  )
  for row in rows:
    print(
      json.dumps(
        {
          "what": FLAGS.what,
          "config": config.get("name", "?"),
          "batch": batch,
          **device_info(),
          **row,
        }
      ),
      flush=True,
    )


if __name__ == "__main__":
  sys.exit(app.run(main))
