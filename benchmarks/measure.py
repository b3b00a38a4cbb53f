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


def train_setup(config, mesh, seed: int = 0):
  """The pieces of a jitted, sharded train step for `config`, as the trainer builds them.

  Returns (models, replicated initial TrainState, replicated VGG layers or None, jitted step).
  """
  import jax

  from me_fomm import model as model_lib
  from me_fomm.train import losses
  from me_fomm.train import mesh as mesh_lib
  from me_fomm.train import state as state_lib
  from me_fomm.train import step as step_lib

  repl = mesh_lib.replicated(mesh)
  models = model_lib.build_models(config.model, remat=bool(config.get("remat", False)))
  optimizers = state_lib.make_optimizers(config, steps_per_epoch=1000)

  def init():
    v = model_lib.init_variables(models, config.model, state_lib.init_rng(seed))
    return state_lib.create_train_state(v, optimizers, jax.random.PRNGKey(1))

  state = jax.jit(init, out_shardings=repl)()
  vgg = None
  if any(config.loss.perceptual):
    vgg = jax.device_put(
      losses.load_vgg(config.loss.vgg, config.loss.vgg_weights or None)["layers"], repl
    )
  step = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  return models, state, vgg, step
