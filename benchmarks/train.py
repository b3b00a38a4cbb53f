"""Training-step throughput: pairs/s, step time, compile time, peak memory, FLOPs.

Measures the compiled sharded step of `me_fomm.train.step` on a synthetic batch already on the
devices (the input pipeline has its own benchmark, --what=data), so the figure is the model's.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from benchmarks import measure


def synthetic_landmarks(batch: int, image_size: int, rng: np.random.Generator) -> np.ndarray:
  """68 dlib-ordered points of a rough frontal face, jittered: realistic AU keypoints for the
  prior-keypoint models without reading a corpus."""
  t = np.linspace(0, 1, 17)
  jaw = np.stack([0.15 + 0.7 * t, 0.45 + 0.4 * np.sin(np.pi * t)], -1)
  brow_r = np.stack(
    [np.linspace(0.22, 0.44, 5), 0.36 - 0.03 * np.sin(np.pi * np.linspace(0, 1, 5))], -1
  )
  brow_l = brow_r * [-1, 1] + [1, 0]
  nose_bridge = np.stack([np.full(4, 0.5), np.linspace(0.42, 0.58, 4)], -1)
  nose_bottom = np.stack(
    [np.linspace(0.43, 0.57, 5), 0.62 + 0.02 * np.sin(np.pi * np.linspace(0, 1, 5))], -1
  )
  a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
  eye_r = np.stack([0.35 - 0.06 * np.cos(a), 0.44 - 0.02 * np.sin(a)], -1)
  eye_l = np.stack([0.65 - 0.06 * np.cos(a), 0.44 - 0.02 * np.sin(a)], -1)
  b = np.linspace(0, 2 * np.pi, 12, endpoint=False)
  mouth_out = np.stack([0.5 - 0.12 * np.cos(b), 0.74 - 0.04 * np.sin(b)], -1)
  c = np.linspace(0, 2 * np.pi, 8, endpoint=False)
  mouth_in = np.stack([0.5 - 0.08 * np.cos(c), 0.74 - 0.015 * np.sin(c)], -1)
  face = np.concatenate(
    [jaw, brow_r, brow_l, nose_bridge, nose_bottom, eye_r, eye_l, mouth_out, mouth_in]
  )
  face = face[None] + rng.normal(0, 0.005, (batch, 68, 2))
  return (face * (image_size - 1)).astype(np.float32)


def synthetic_batch(batch: int, image_size: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  lm = synthetic_landmarks(batch, image_size, rng)
  return {
    "source": rng.random((batch, image_size, image_size, 3), np.float32),
    "driving": rng.random((batch, image_size, image_size, 3), np.float32),
    "source_landmarks": lm,
    "driving_landmarks": lm + rng.normal(0, 0.5, lm.shape).astype(np.float32),
    "onset_landmarks": lm,
  }


def model_residual_bytes(models, config, batch: int) -> int | None:
  """Bytes the models' training forward (keypoints of source and driving, generator) keeps for
  the backward pass: the leaves of `jax.vjp`'s closure, from shapes only (`jax.eval_shape`).

  Unlike the compiled program's peak this does not depend on the backend's scheduler (XLA's CPU
  scheduler hoists the recomputation of rematerialised blocks and so shows no saving in its peak),
  so it shows what `config.remat` removes: activations of the wrapped blocks.
  """
  from me_fomm import model as model_lib
  from me_fomm.train import step as step_lib

  cfg = config.model
  variables = model_lib.abstract_variables(models, cfg)
  data = jax.eval_shape(lambda: synthetic_batch(batch, cfg.image_size))

  def forward(params, variables, data):
    kv = {**variables["kp_detector"], "params": params["kp_detector"]}
    gv = {**variables["generator"], "params": params["generator"]}
    prior_s, prior_d = step_lib.batch_priors(data, cfg)
    kp_s, _ = models.kp_detector.apply(
      kv, data["source"], prior=prior_s, train=True, mutable=["batch_stats"]
    )
    kp_d, _ = models.kp_detector.apply(
      kv, data["driving"], prior=prior_d, train=True, mutable=["batch_stats"]
    )
    out, _ = models.generator.apply(
      gv, data["source"], kp_source=kp_s, kp_driving=kp_d, train=True, mutable=["batch_stats"]
    )
    return out["prediction"]

  def residuals(params, variables, data):
    # The VJP closure is a pytree (jax.tree_util.Partial) whose array leaves are the residuals.
    leaves = jax.tree.leaves(jax.vjp(lambda p: forward(p, variables, data), params)[1])
    return [x for x in leaves if isinstance(x, jax.Array)]

  params = {k: variables[k]["params"] for k in ("kp_detector", "generator")}
  leaves = jax.eval_shape(residuals, params, variables, data)
  if not leaves:  # A JAX whose VJP closure hides its residuals: no figure rather than a wrong one.
    return None
  return int(sum(np.prod(x.shape) * x.dtype.itemsize for x in leaves))


def run(config, batch: int, steps: int = 10, warmup: int = 2, repeats: int = 3) -> list[dict]:
  from me_fomm.train import mesh as mesh_lib

  config = config.copy_and_resolve_references()
  config.batch_size = batch
  mesh = mesh_lib.make_mesh()
  mesh_lib.check_batch_divisible(batch, mesh)
  remat = bool(config.get("remat", False))
  models, state, vgg, step = measure.train_setup(config, mesh)
  data = jax.device_put(
    synthetic_batch(batch, config.model.image_size), mesh_lib.batch_sharded(mesh)
  )
  t = time.perf_counter()
  compiled = step.lower(state, data, vgg).compile()
  compile_s = time.perf_counter() - t

  box = {"state": state}

  def call():
    box["state"], metrics = compiled(box["state"], data, vgg)
    return metrics["loss"]

  # Under SPMD the cost analysis is of one device's program; the step's total is n times it.
  row = measure.throughput_row(
    compiled, call, batch, "pairs/s", compile_s, steps, repeats, warmup, jax.device_count()
  )
  row.update(
    dtype=config.model.dtype,
    image_size=config.model.image_size,
    gan=config.loss.generator_gan > 0,
    remat=remat,
    model_residual_bytes=model_residual_bytes(models, config, batch),
  )
  return [row]
