"""Generation throughput: frames/s for a batch of frames and for one frame at a time.

Times the compiled per-batch program of `me_fomm.generate.animate.Animator` (driving keypoints, relative
motion transfer, dense motion, generator) on frames already on the device, with randomly initialised
variables (speed does not depend on the weights). The one-frame figure is the same program compiled for
batch 1, called frame after frame, as an interactive user would; as in `Animator.run`, the target's
keypoints and encoder features are computed once, outside the timed calls. With the export extra
installed, each figure has a twin row (`runtime: onnxruntime`) for the same program exported to ONNX
(`benchmarks.onnx_runtime`).

    python -m benchmarks.run --what=generate --config=fomm_vox --batch=32
    python -m benchmarks.generate --config=demo --batch=8 --image_size=256
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np


def _setup(config, image_size: int | None):
  from me_fomm import model as model_lib
  from me_fomm.generate.animate import Animator

  cfg = config.model if "model" in config else config
  cfg = cfg.copy_and_resolve_references()
  if image_size:
    cfg.image_size = int(image_size)
  models = model_lib.build_models(cfg)
  variables = model_lib.init_variables(models, cfg, jax.random.PRNGKey(0))
  return cfg, models, variables, Animator


def _first_output(fn, *args):
  return fn(*args)[0]


def run(
  config,
  batch: int = 32,
  steps: int = 10,
  warmup: int = 2,
  repeats: int = 3,
  image_size: int | None = None,
) -> list[dict]:
  """Rows {'figure': frames/s, 'unit', 'mode': 'batch'|'one_frame', step and compile times, FLOPs, memory}.

  Args:
    config: a training config (with `.model`) or a model config.
    batch: frames per compiled batch for the batched figure.
    steps, warmup, repeats: timed calls per repeat, untimed calls, repeats (median reported).
    image_size: override of the model's resolution (e.g. 256 for the demo config's architecture at 256).
  """
  from benchmarks import onnx_runtime
  from benchmarks.measure import throughput_row
  from benchmarks.train import synthetic_landmarks
  from me_fomm.prior.inputs import keypoint_prior

  cfg, models, variables, Animator = _setup(config, image_size)
  size = int(cfg.image_size)
  rng = np.random.default_rng(0)
  rows = []
  for mode, b, n_steps in (("batch", batch, steps), ("one_frame", 1, steps)):
    animator = Animator(models, variables, cfg, batch_size=b)
    v = jax.device_put(animator.variables)
    source = jnp.asarray(rng.random((1, size, size, 3), np.float32))
    driving = jnp.asarray(rng.random((b, size, size, 3), np.float32))
    # The target's and the driving frames' prior keypoints (None for learned keypoints).
    lm = synthetic_landmarks(b + 1, size, rng)
    src_prior, prior = (
      None if p is None else jnp.asarray(p["value"])
      for p in (keypoint_prior(cfg, lm[:1], lm[:1]), keypoint_prior(cfg, lm[1:], lm[1]))
    )
    # What `Animator.run` computes once per target: its keypoints and its encoder features.
    kp_s = animator._keypoints(v, source, src_prior)
    encoded = animator._encode(v, source)
    kp_0 = animator._keypoints(v, driving[:1], None if prior is None else prior[:1])
    t = time.perf_counter()
    scale = jnp.float32(1.0)
    compiled = animator._frames.lower(
      v, source, encoded, kp_s, kp_0, driving, prior, scale
    ).compile()
    compile_s = time.perf_counter() - t
    call = functools.partial(
      _first_output, compiled, v, source, encoded, kp_s, kp_0, driving, prior, scale
    )
    row = throughput_row(compiled, call, b, "frames/s", compile_s, n_steps, repeats, warmup)
    row.update(mode=mode, frames_per_call=b, image_size=size, variant=cfg.variant, dtype=cfg.dtype)
    rows.append(row)
    # The same batch exported to ONNX and run by onnxruntime on CPU (no row without the export extra).
    ort = onnx_runtime.row(cfg, models, variables, b, n_steps, repeats, warmup)
    if ort is not None:
      row["runtime"] = "jax"
      ort.update(
        mode=mode, frames_per_call=b, image_size=size, variant=cfg.variant, dtype="float32"
      )
      rows.append(ort)
  return rows


def main(opts) -> None:
  from benchmarks.run import print_rows

  batch = opts.batch or 32
  rows = run(
    opts.config,
    batch=batch,
    steps=opts.steps,
    warmup=opts.warmup,
    repeats=opts.repeats,
    image_size=opts.image_size,
  )
  print_rows("generate", opts.config, batch, rows)


if __name__ == "__main__":
  from benchmarks import run as bench_run
  from me_fomm.commands import options as O

  # The shared flags (--config, --batch, --steps, --repeats, --warmup) are benchmarks.run's.
  bench_run.script(
    bench_run.OPTIONS[1:]
    + (O.integer("image_size", None, "Override the model's resolution (e.g. 256)."),),
    main,
  )
