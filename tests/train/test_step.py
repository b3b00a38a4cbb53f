"""The compiled training step: sharding invariance, non-finite handling, full-size lowering."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tiny_setup  # noqa: E402

from me_fomm import model as model_lib  # noqa: E402
from me_fomm.train import losses  # noqa: E402
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib
from me_fomm.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_INITS = {}


def build(config, mesh, batch, vgg):
  """(fresh state, compiled step) on `mesh`; the init function is reused so it compiles once."""
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, config.steps_per_epoch)
  if mesh not in _INITS:

    def init():
      v = model_lib.init_variables(models, config.model, state_lib.init_rng(0))
      return state_lib.create_train_state(v, optimizers, jax.random.PRNGKey(1))

    _INITS[mesh] = jax.jit(init, out_shardings=mesh_lib.replicated(mesh))
  state = _INITS[mesh]()
  jitted = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  step, _ = step_lib.compile_train_step(
    jitted, state, mesh_lib.global_batch_from_local(batch, mesh), vgg, config.compiler_options
  )
  return state, step


@pytest.fixture(scope="module")
def setup():
  config = tiny_setup.tiny_config("seed", gan=True)
  vgg = losses.load_vgg("vgg16")["layers"]
  batch = tiny_setup.tiny_batch(4)
  return config, vgg, batch


def run_steps(state, step, mesh, vgg, batch, n=2):
  out = []
  for _ in range(n):
    state, metrics = step(state, mesh_lib.global_batch_from_local(batch, mesh), vgg)
    out.append(jax.device_get(metrics))
  return state, out


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_two_processes(tmp_path, compile_cache_dir):
  """2 processes x 2 CPU devices joined by jax.distributed (gloo collectives over 127.0.0.1)."""
  port = _free_port()
  env = tiny_setup.subprocess_env(compile_cache_dir, devices=2)
  worker = os.path.join(os.path.dirname(__file__), "multiprocess_worker.py")
  return [
    subprocess.Popen(
      [sys.executable, worker, f"127.0.0.1:{port}", "2", str(i), str(tmp_path / f"out{i}.json")],
      env=env,
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]


def check_nonfinite_batch_skips_update(init, step, mesh, vgg, batch):
  state = init()
  before = jax.device_get(state)
  bad = dict(
    batch, source=np.where(np.arange(4)[:, None, None, None] == 1, np.nan, batch["source"])
  )
  state, metrics = step(state, mesh_lib.global_batch_from_local(bad, mesh), vgg)
  after = jax.device_get(state)
  assert int(metrics["skipped"]) == 1 and not np.isfinite(float(metrics["loss"]))
  assert int(after.nonfinite_total) == 1 and int(after.nonfinite_run) == 1
  # Parameters, BatchNorm statistics and optimiser moments are exactly the old ones.
  jax.tree.map(np.testing.assert_array_equal, after.variables, before.variables)
  jax.tree.map(np.testing.assert_array_equal, after.opt_state, before.opt_state)
  state, _ = step(state, mesh_lib.global_batch_from_local(bad, mesh), vgg)
  state, metrics = step(state, mesh_lib.global_batch_from_local(batch, mesh), vgg)
  assert int(metrics["skipped"]) == 0 and np.isfinite(float(metrics["loss"]))
  assert (int(state.nonfinite_total), int(state.nonfinite_run), int(state.nonfinite_run_max)) == (
    2,
    0,
    2,
  )
  assert int(state.step) == 3


def test_sharded_step(setup, tmp_path, compile_cache_dir):
  """One compiled program, three properties (one test so `pytest -n` compiles it once):

  1. 4 simulated devices give the losses and updated parameters of 1 device on the same global
     batch (float32 round-off), two steps in a row;
  2. 2 processes x 2 devices (jax.distributed, gloo collectives) give the same losses;
  3. a batch with a NaN frame skips the whole update inside the step and is counted.
  """
  config, vgg, batch = setup
  procs = start_two_processes(tmp_path, compile_cache_dir)  # compiles while we do
  try:
    assert jax.device_count() >= 4, "conftest.py simulates 4 CPU devices"
    mesh4 = mesh_lib.make_mesh(jax.devices()[:4])
    vgg4 = jax.device_put(vgg, mesh_lib.replicated(mesh4))
    state4, step4 = build(config, mesh4, batch, vgg4)
    mesh1 = mesh_lib.make_mesh(jax.devices()[:1])
    vgg1 = jax.device_put(vgg, mesh_lib.replicated(mesh1))
    state1, step1 = build(config, mesh1, batch, vgg1)
    init = jax.device_get(state1.variables)
    new4, m4 = run_steps(state4, step4, mesh4, vgg4, batch)
    new1, m1 = run_steps(state1, step1, mesh1, vgg1, batch)
    for a, b in zip(m4, m1):
      assert (
        set(a)
        == set(b)
        >= {
          "loss",
          "perceptual",
          "generator_gan",
          "feature_matching",
          "equivariance_value",
          "equivariance_jacobian",
          "disc_gan",
        }
      )
      for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, err_msg=k)
    p4, p1 = jax.device_get(new4.variables), jax.device_get(new1.variables)
    # Adam divides by sqrt(v): a parameter whose gradient is ~0 moves by round-off amplified to a few
    # 1e-6 (seen: 1.7e-6 on one of 576 entries), so the absolute tolerance is 1e-5.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), p4, p1)
    # Training moved every module (the discriminator too: GAN on).
    for name in ("kp_detector", "generator", "discriminator"):
      moved = jax.tree.leaves(
        jax.tree.map(lambda a, b: np.abs(a - b).max(), p1[name]["params"], init[name]["params"])
      )
      assert max(moved) > 0, name
    assert int(new4.step) == 2 and int(new4.nonfinite_total) == 0

    check_nonfinite_batch_skips_update(_INITS[mesh4], step4, mesh4, vgg4, batch)

    outs = [p.communicate(timeout=600)[0] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  for i in range(2):
    got = json.loads((tmp_path / f"out{i}.json").read_text())
    assert got["devices"] == 4 and got["processes"] == 2
    for k, v in m4[0].items():
      np.testing.assert_allclose(got["metrics"][k], v, rtol=2e-5, atol=1e-6, err_msg=k)


def test_full_size_seed_step_lowers_without_running():
  """The seed config at 256 px, batch 9, GAN on: the step traces and lowers (shapes only)."""
  from experiments.configs import seed

  config = seed.get_config("casme2")
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, 1000)
  abstract_state = jax.eval_shape(
    lambda: state_lib.create_train_state(
      model_lib.init_variables(models, config.model, state_lib.init_rng(0)),
      optimizers,
      jax.random.PRNGKey(1),
    )
  )
  b, s = config.batch_size, config.model.image_size
  f32 = jnp.float32
  batch = {
    "source": jax.ShapeDtypeStruct((b, s, s, 3), f32),
    "driving": jax.ShapeDtypeStruct((b, s, s, 3), f32),
    **{
      k: jax.ShapeDtypeStruct((b, 68, 2), f32)
      for k in ("source_landmarks", "driving_landmarks", "onset_landmarks")
    },
  }
  vgg = jax.eval_shape(lambda: losses.load_vgg("vgg16")["layers"])
  step = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  new_state, metrics = jax.eval_shape(step, abstract_state, batch, vgg)
  assert jax.tree.map(lambda x: (x.shape, x.dtype), new_state.variables) == jax.tree.map(
    lambda x: (x.shape, x.dtype), abstract_state.variables
  )
  assert set(metrics) >= {
    "loss",
    "perceptual",
    "generator_gan",
    "feature_matching",
    "equivariance_value",
    "equivariance_jacobian",
    "disc_gan",
    "skipped",
  }
  n_params = sum(
    model_lib.count_params(abstract_state.variables[m])
    for m in ("kp_detector", "generator", "discriminator")
  )
  assert n_params > 50e6  # the full-width vox-256 modules (about 59M parameters), not a toy
  lowered = step.lower(abstract_state, batch, vgg)
  assert "stablehlo" in lowered.as_text()[:20000] or "func.func" in lowered.as_text()[:20000]


def test_bfloat16_compute_keeps_float32_parameters_and_losses():
  """dtype='bfloat16' computes in bf16; parameters, optimiser state and losses stay float32."""
  config = tiny_setup.tiny_config("seed", gan=True)
  config.model.dtype = "bfloat16"
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, 100)
  abstract_state = jax.eval_shape(
    lambda: state_lib.create_train_state(
      model_lib.init_variables(models, config.model, state_lib.init_rng(0)),
      optimizers,
      jax.random.PRNGKey(1),
    )
  )
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tiny_setup.tiny_batch(4))
  vgg = jax.eval_shape(lambda: losses.load_vgg("vgg16")["layers"])
  step = step_lib.make_train_step(models, config.model, config, optimizers)
  jaxpr, (new_state, metrics) = jax.make_jaxpr(step, return_shape=True)(abstract_state, batch, vgg)
  assert "bf16" in str(jaxpr)  # the convolutions really run in bfloat16
  floats = [
    x.dtype
    for x in jax.tree.leaves((new_state.variables, new_state.opt_state))
    if jnp.issubdtype(x.dtype, jnp.floating)
  ]
  assert floats and set(floats) == {jnp.dtype("float32")}
  assert {metrics[k].dtype for k in metrics if k != "skipped"} == {jnp.dtype("float32")}


@pytest.mark.parametrize("variant", ["fomm", "tip24"])
def test_other_variants_trace(variant):
  """Learned keypoints (fomm) and per-frame prior keypoints with the adaptive mask (tip24)."""
  config = tiny_setup.tiny_config(variant, gan=variant == "tip24")
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, 100)
  abstract_state = jax.eval_shape(
    lambda: state_lib.create_train_state(
      model_lib.init_variables(models, config.model, state_lib.init_rng(0)),
      optimizers,
      jax.random.PRNGKey(1),
    )
  )
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tiny_setup.tiny_batch(4))
  vgg = jax.eval_shape(lambda: losses.load_vgg("vgg16")["layers"])
  step = step_lib.make_train_step(models, config.model, config, optimizers)
  new_state, metrics = jax.eval_shape(step, abstract_state, batch, vgg)
  assert ("disc_gan" in metrics) == (variant == "tip24")
  assert {"perceptual", "equivariance_value", "equivariance_jacobian"} <= set(metrics)
