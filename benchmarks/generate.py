"""Generation throughput: frames/s for a batch of frames and for one frame at a time.

Times the compiled per-batch program of `me_fomm.generate.animate.Animator` (driving keypoints, relative
motion transfer, dense motion, generator) on frames already on the device, with randomly initialised
variables (speed does not depend on the weights). The one-frame figure is the same program compiled for
batch 1, called frame after frame, as an interactive user would.

    python -m benchmarks.run --what=generate --config=experiments/configs/fomm_vox.py --batch=32
    python -m benchmarks.generate --config=experiments/configs/demo.py --batch=8 --image_size=256
"""

from __future__ import annotations

import functools
import sys
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


def _synthetic_landmarks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
  """(n, 68, 2) px: a frontal face's landmarks, jittered (the prior keypoints need some; values do not
  change the speed)."""
  t = np.linspace(0, 1, 17)
  jaw = np.stack([0.15 + 0.7 * t, 0.45 + 0.4 * np.sin(np.pi * t)], -1)
  brows = np.stack(
    [np.r_[np.linspace(0.22, 0.44, 5), np.linspace(0.56, 0.78, 5)], np.full(10, 0.35)], -1
  )
  nose = np.stack(
    [
      np.r_[np.full(4, 0.5), np.linspace(0.43, 0.57, 5)],
      np.r_[np.linspace(0.42, 0.58, 4), np.full(5, 0.62)],
    ],
    -1,
  )
  a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
  eyes = np.concatenate(
    [np.stack([c - 0.06 * np.cos(a), 0.44 - 0.02 * np.sin(a)], -1) for c in (0.35, 0.65)]
  )
  b = np.linspace(0, 2 * np.pi, 20, endpoint=False)
  mouth = np.stack(
    [
      0.5 - np.r_[0.12 * np.cos(b[:12]), 0.08 * np.cos(b[12:])],
      0.74 - np.r_[0.04 * np.sin(b[:12]), 0.015 * np.sin(b[12:])],
    ],
    -1,
  )
  face = np.concatenate([jaw, brows, nose, eyes, mouth])
  return ((face[None] + rng.normal(0, 0.005, (n, 68, 2))) * (size - 1)).astype(np.float32)


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
  from benchmarks.measure import compiled_flops, peak_memory, time_steps

  cfg, models, variables, Animator = _setup(config, image_size)
  size = int(cfg.image_size)
  rng = np.random.default_rng(0)
  rows = []
  for mode, b, n_steps in (("batch", batch, steps), ("one_frame", 1, steps)):
    animator = Animator(models, variables, cfg, batch_size=b)
    v = jax.device_put(animator.variables)
    source = jnp.asarray(rng.random((1, size, size, 3), np.float32))
    driving = jnp.asarray(rng.random((b, size, size, 3), np.float32))
    prior = None
    src_prior = None
    if animator.uses_prior:
      from me_fomm.generate.animate import au_prior_values

      lm = _synthetic_landmarks(b + 1, size, rng)
      values = au_prior_values(lm, size)
      src_prior, prior = jnp.asarray(values[:1]), jnp.asarray(values[1:])
    kp_s = animator._keypoints(v, source, src_prior)
    kp_0 = animator._keypoints(v, driving[:1], None if prior is None else prior[:1])
    t = time.perf_counter()
    scale = jnp.float32(1.0)
    compiled = animator._frames.lower(v, source, kp_s, kp_0, driving, prior, scale).compile()
    compile_s = time.perf_counter() - t
    flops = compiled_flops(compiled)

    call = functools.partial(_first_output, compiled, v, source, kp_s, kp_0, driving, prior, scale)

    timing = time_steps(call, n_steps, repeats, warmup)
    step_s = timing["step_time_s"]
    row = {
      "figure": b / step_s,
      "unit": "frames/s",
      "mode": mode,
      "frames_per_call": b,
      "step_time_s": step_s,
      "compile_time_s": compile_s,
      "image_size": size,
      "variant": cfg.variant,
      "dtype": cfg.dtype,
      **peak_memory(compiled),
    }
    if flops is not None:
      row.update(model_flops_per_step=flops, achieved_tflops_per_s=flops / step_s / 1e12)
    rows.append(row)
  return rows


def main(argv) -> None:
  import json

  from absl import flags

  from benchmarks.measure import device_info

  FLAGS = flags.FLAGS
  if len(argv) > 1:
    raise SystemExit(f"unexpected arguments {argv[1:]}")
  config = FLAGS.config
  batch = FLAGS.batch or 32
  rows = run(
    config,
    batch=batch,
    steps=FLAGS.steps,
    warmup=FLAGS.warmup,
    repeats=FLAGS.repeats,
    image_size=FLAGS.image_size,
  )
  for row in rows:
    print(
      json.dumps(
        {
          "what": "generate",
          "config": config.get("name", "?"),
          "batch": batch,
          **device_info(),
          **row,
        }
      ),
      flush=True,
    )


if __name__ == "__main__":
  from absl import app, flags

  # The shared flags (--config, --batch, --steps, --repeats, --warmup) are benchmarks.run's.
  import benchmarks.run  # noqa: F401

  flags.DEFINE_integer("image_size", None, "Override the model's resolution (e.g. 256).")
  sys.exit(app.run(main))
