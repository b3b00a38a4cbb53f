"""Measuring helpers shared by the benchmarks (device, memory, FLOPs, timing)."""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any, Callable


def device_info() -> dict:
  import jax

  d = jax.devices()[0]
  return {"device": f"{jax.device_count()}x {d.device_kind} ({d.platform})", "jax": jax.__version__}


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
      out["peak_memory_bytes"] = int(
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
      )
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


def throughput_row(
  compiled,
  call: Callable[[], Any],
  items: int,
  unit: str,
  compile_s: float,
  steps: int,
  repeats: int,
  warmup: int,
  flops_scale: int = 1,
) -> dict:
  """The fields every benchmark row has: `figure` (items per second of `call`) and `unit`, step and
  compile times, peak memory and, where XLA's cost analysis reports them, FLOPs per step and TFLOP/s
  (`flops_scale`: how many devices the one-device program of the cost analysis stands for)."""
  step_s = time_steps(call, steps, repeats, warmup)["step_time_s"]
  row = {
    "figure": items / step_s,
    "unit": unit,
    "step_time_s": step_s,
    "compile_time_s": compile_s,
    **peak_memory(compiled),
  }
  flops = compiled_flops(compiled)
  if flops is not None:
    total = flops * flops_scale
    row.update(model_flops_per_step=total, achieved_tflops_per_s=total / step_s / 1e12)
  return row


def train_setup(config, mesh):
  """The pieces of a jitted, sharded train step for `config`, as the trainer builds them (the
  initial state of `config.seed`).

  Returns (models, replicated initial TrainState, replicated VGG layers or None, jitted step).
  """
  import jax

  from me_fomm import model as model_lib
  from me_fomm.model import perceptual
  from me_fomm.train import mesh as mesh_lib
  from me_fomm.train import state as state_lib
  from me_fomm.train import step as step_lib

  repl = mesh_lib.replicated(mesh)
  models = model_lib.build_models(config.model, remat=bool(config.get("remat", False)))
  optimizers = state_lib.make_optimizers(config, steps_per_epoch=1000)
  state = jax.jit(
    lambda: state_lib.init_train_state(models, config, optimizers), out_shardings=repl
  )()
  vgg = None
  if any(config.loss.perceptual):
    vgg = jax.device_put(
      perceptual.load_vgg(config.loss.vgg, config.loss.vgg_weights or None)["layers"], repl
    )
  step = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  return models, state, vgg, step
