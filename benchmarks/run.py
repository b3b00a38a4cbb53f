"""One entry for every benchmark: prints one JSON line per measurement.

    python -m benchmarks.run --what=train --config=experiments/configs/demo.py --batch=8
    python -m benchmarks.run --what=train --config=experiments/configs/fomm_vox.py --batch=40 \
        --config.model.dtype=bfloat16
    python -m benchmarks.run --what=generate --config=experiments/configs/fomm_vox.py --batch=32
    python -m benchmarks.run --what=data --config=experiments/configs/demo.py --batch=8

Each `benchmarks/<what>.py` has `run(config, batch, steps, warmup) -> list[dict]` and may use the
measuring helpers here (`device_info`, `peak_memory`, `compiled_flops`, `time_steps`). Every line
carries the figure and its unit, step time, compile time, peak memory, the device and, where XLA
reports it, the FLOPs per step from its cost analysis and the achieved TFLOP/s.
"""

from __future__ import annotations

import importlib
import json
import resource
import statistics
import sys
import time
from typing import Any, Callable

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("what", "train", ["train", "generate", "data"], "What to measure.")
config_flags.DEFINE_config_file("config", None, "Training config file (experiments/configs/*.py[:arg]); "
                                "override fields with --config.x=y.", lock_config=False)
flags.DEFINE_integer("batch", None, "Global batch size (default: the config's).")
flags.DEFINE_integer("steps", 10, "Timed steps per repeat.")
flags.DEFINE_integer("repeats", 3, "Timed repeats; the median is reported.")
flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
flags.mark_flag_as_required("config")


def device_info() -> dict:
    import jax

    d = jax.devices()[0]
    return {"device": f"{jax.device_count()}x {d.device_kind} ({d.platform})",
            "jax": jax.__version__}


def peak_memory(compiled=None) -> dict:
    """Peak device memory (allocator statistics, GPU/TPU), else XLA's compiled-program estimate
    (arguments + outputs + temporaries - aliased), plus the host process's peak RSS."""
    import jax

    out = {"host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        out["peak_memory_bytes"] = int(stats["peak_bytes_in_use"])
        out["peak_memory_source"] = "allocator"
    elif compiled is not None:
        m = compiled.memory_analysis()
        if m is not None:
            out["peak_memory_bytes"] = int(m.argument_size_in_bytes + m.output_size_in_bytes
                                           + m.temp_size_in_bytes - m.alias_size_in_bytes)
            out["peak_memory_source"] = "xla_memory_analysis"
    return out


def compiled_flops(compiled) -> float | None:
    """FLOPs of one call of a compiled program from XLA's cost analysis (per device under SPMD)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # Some backends do not implement it.
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def time_steps(call: Callable[[], Any], steps: int, repeats: int, warmup: int) -> dict:
    """Median seconds per call over `repeats` runs of `steps` calls, synchronised at each end."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(call())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = None
        for _ in range(steps):
            out = call()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t) / steps)
    return {"step_time_s": statistics.median(times), "step_time_all_s": times}


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    config = FLAGS.config
    batch = FLAGS.batch or config.batch_size
    module = importlib.import_module(f"benchmarks.{FLAGS.what}")
    rows = module.run(config, batch=batch, steps=FLAGS.steps, warmup=FLAGS.warmup,
                      repeats=FLAGS.repeats)
    for row in rows:
        print(json.dumps({"what": FLAGS.what, "config": config.get("name", "?"), "batch": batch,
                          **device_info(), **row}), flush=True)


if __name__ == "__main__":
    sys.exit(app.run(main))
