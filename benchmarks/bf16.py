"""Does bfloat16 compute change what the model learns? Same init, same batches, float32 vs bfloat16.

    python -m benchmarks.run --what=bf16 --config=demo --batch=4 --steps=20

Trains the config's model for `steps` steps twice from the same initial variables on the same
synthetic pairs (smooth random images, the driving frame a shifted copy of the source, landmarks
shifted with it), once with `model.dtype='float32'` and once with `'bfloat16'` (parameters, optimiser
and losses stay float32 in both). Rows:

* `loss_gap`: both loss curves' first and final values (mean of the last quarter of the steps, so one
  noisy step does not decide) and the relative gap |bf16 - f32| / f32 of the final values;
* `generation_l1`: the float32-trained variables animate the same frames through
  `me_fomm.generate.animate` in float32 and in bfloat16; mean and max absolute difference in [0, 1].

`repeats` and `warmup` are unused (every step is part of the curve).
"""

from __future__ import annotations

import time

import jax
import numpy as np


def synthetic_pairs(count: int, batch: int, image_size: int, seed: int = 0) -> list[dict]:
  """`count` host batches of structured pairs: low-frequency colour images (learnable, unlike
  white noise), the driving frame the source shifted by a few pixels, landmarks moved alike."""
  from benchmarks.train import synthetic_landmarks

  rng = np.random.default_rng(seed)
  coarse = 8
  out = []
  for _ in range(count):
    low = rng.random((batch, coarse, coarse, 3)).astype(np.float32)
    src = np.asarray(jax.image.resize(low, (batch, image_size, image_size, 3), "bicubic"))
    src = np.clip(src, 0, 1)
    shift = rng.integers(-3, 4, (batch, 2))
    drv = np.stack([np.roll(s, tuple(d), axis=(0, 1)) for s, d in zip(src, shift)])
    lm = synthetic_landmarks(batch, image_size, rng)
    out.append(
      {
        "source": src,
        "driving": drv.astype(np.float32),
        "source_landmarks": lm,
        "driving_landmarks": (lm + shift[:, None, ::-1]).astype(np.float32),
        "onset_landmarks": lm,
      }
    )
  return out


def _with_dtype(config, dtype: str):
  c = config.copy_and_resolve_references()
  c.model.dtype = dtype
  return c


def train_curve(config, batches: list[dict]) -> tuple[list[float], dict, float]:
  """Loss per step of `config` on `batches` from the init of `config.seed`; also the final
  variables and the compile time."""
  from benchmarks import measure
  from me_fomm.train import mesh as mesh_lib

  mesh = mesh_lib.make_mesh()
  _, state, vgg, step = measure.train_setup(config, mesh)
  device_batches = [mesh_lib.global_batch_from_local(b, mesh) for b in batches]
  t = time.perf_counter()
  compiled = step.lower(state, device_batches[0], vgg).compile()
  compile_s = time.perf_counter() - t
  losses_out = []
  for b in device_batches:
    state, metrics = compiled(state, b, vgg)
    losses_out.append(metrics["loss"])  # fetched once at the end: no host sync per step
  return [float(x) for x in jax.device_get(losses_out)], jax.device_get(state.variables), compile_s


def generation_l1(
  model_cfg,
  variables,
  target: np.ndarray,
  driving: np.ndarray,
  target_landmarks=None,
  driving_landmarks=None,
) -> dict:
  """Mean and max |bf16 - f32| of `animate` on the same frames with the same (float32) variables."""
  from me_fomm import model as model_lib
  from me_fomm.generate.animate import animate

  preds = {}
  for dtype in ("float32", "bfloat16"):
    cfg = model_cfg.copy_and_resolve_references()
    cfg.dtype = dtype
    preds[dtype] = animate(
      model_lib.build_models(cfg),
      variables,
      cfg,
      target,
      driving,
      target_landmarks=target_landmarks,
      driving_landmarks=driving_landmarks,
      batch_size=len(driving),
    )
  diff = np.abs(preds["bfloat16"].astype(np.float64) - preds["float32"])
  return {"l1_mean": float(diff.mean()), "abs_max": float(diff.max())}


def run(config, batch: int, steps: int = 20, warmup: int = 0, repeats: int = 1) -> list[dict]:
  del warmup, repeats
  config = config.copy_and_resolve_references()
  config.batch_size = batch
  size = config.model.image_size
  batches = synthetic_pairs(steps, batch, size, seed=config.seed)
  curves, variables, compile_s = {}, {}, {}
  for dtype in ("float32", "bfloat16"):
    curves[dtype], variables[dtype], compile_s[dtype] = train_curve(
      _with_dtype(config, dtype), batches
    )
  tail = max(1, steps // 4)
  final = {d: float(np.mean(c[-tail:])) for d, c in curves.items()}
  gap = abs(final["bfloat16"] - final["float32"]) / abs(final["float32"])
  rows = [
    {
      "figure": gap,
      "unit": "relative final-loss gap (bf16 vs f32)",
      "steps": steps,
      "final_loss_f32": final["float32"],
      "final_loss_bf16": final["bfloat16"],
      "first_loss_f32": curves["float32"][0],
      "first_loss_bf16": curves["bfloat16"][0],
      "final_over_last_steps": tail,
      "compile_time_s": compile_s["float32"],
      "compile_time_bf16_s": compile_s["bfloat16"],
    }
  ]

  # Generation: frames of the first batch, its first source as the target.
  b = batches[0]
  gen = generation_l1(
    config.model,
    variables["float32"],
    b["source"][0],
    b["driving"],
    target_landmarks=b["source_landmarks"][0],
    driving_landmarks=b["driving_landmarks"],
  )
  rows.append(
    {
      "figure": gen["l1_mean"],
      "unit": "mean L1 bf16 vs f32 generation ([0,1] pixels)",
      "abs_max": gen["abs_max"],
      "frames": len(b["driving"]),
      "trained_steps": steps,
    }
  )
  return rows
