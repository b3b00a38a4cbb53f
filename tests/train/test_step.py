"""The compiled training step: sharding invariance, non-finite handling, full-size lowering, the
other variants' behaviour."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_setup

from me_fomm import model as model_lib
from me_fomm.model import perceptual
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib
from me_fomm.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_INITS = {}


def build(config, mesh, batch, vgg):
  """(fresh state, compiled step) on `mesh`; the init function is reused so it compiles once."""
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, config.steps_per_epoch)
  key = (config.name, mesh)
  if key not in _INITS:
    _INITS[key] = jax.jit(
      lambda: state_lib.init_train_state(models, config, optimizers),
      out_shardings=mesh_lib.replicated(mesh),
    )
  state = _INITS[key]()
  jitted = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  step, _ = step_lib.compile_train_step(
    jitted, state, mesh_lib.global_batch_from_local(batch, mesh), vgg, config.compiler_options
  )
  return state, step


def abstract_setup(config, steps_per_epoch: int = 100):
  """(models, optimizers, abstract initial state, abstract VGG layers): shapes only."""
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, steps_per_epoch)
  state = jax.eval_shape(lambda: state_lib.init_train_state(models, config, optimizers))
  vgg = jax.eval_shape(lambda: perceptual.load_vgg("vgg16")["layers"])
  return models, optimizers, state, vgg


@pytest.fixture(scope="module")
def setup():
  config = tiny_setup.tiny_config("seed", gan=True)
  vgg = perceptual.load_vgg("vgg16")["layers"]
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


def moved(before, after) -> dict:
  """{module: whether any of its parameters changed} between two variable trees."""
  return {
    name: any(
      jax.tree.leaves(
        jax.tree.map(
          lambda a, b: bool(np.any(a != b)), before[name]["params"], after[name]["params"]
        )
      )
    )
    for name in before
  }


def au_values(landmarks):
  """The AU keypoint values of dlib landmarks (B, 68, 2) px in the 32 px tiny frames."""
  return au_px_to_value(landmarks_to_au(landmarks), tiny_setup.SIZE)


def check_sharding_and_donation(step, mesh):
  """The compiled step takes the state replicated and donated, the batch split on `data`."""
  (state_sh, batch_sh, vgg_sh), _ = step.input_shardings
  (state_info, batch_info, vgg_info), _ = step.args_info
  assert all(s.spec == jax.sharding.PartitionSpec() for s in jax.tree.leaves((state_sh, vgg_sh)))
  for s in jax.tree.leaves(batch_sh):
    assert s.mesh.shape == {"data": mesh.size} and s.spec[0] == "data"
    assert all(axis is None for axis in s.spec[1:])
  assert all(a.donated for a in jax.tree.leaves(state_info))
  assert not any(a.donated for a in jax.tree.leaves((batch_info, vgg_info)))


def test_sharded_step(setup, tmp_path, compile_cache_dir):
  """One compiled program, four properties (one test so `pytest -n` compiles it once):

  1. it takes the batch split on the mesh's `data` axis and the state replicated and donated;
  2. 4 simulated devices give the losses and updated parameters of 1 device on the same global
     batch (float32 round-off), two steps in a row, and the seed's two passes both get the onset
     frame's AU keypoints;
  3. 2 processes x 2 devices (jax.distributed, gloo collectives) give the same losses;
  4. a batch with a NaN frame skips the whole update inside the step and is counted.
  """
  config, vgg, batch = setup
  procs = start_two_processes(tmp_path, compile_cache_dir)  # compiles while we do
  try:
    assert jax.device_count() >= 4, "conftest.py simulates 4 CPU devices"
    mesh4 = mesh_lib.make_mesh(jax.devices()[:4])
    vgg4 = jax.device_put(vgg, mesh_lib.replicated(mesh4))
    state4, step4 = build(config, mesh4, batch, vgg4)
    check_sharding_and_donation(step4, mesh4)
    mesh1 = mesh_lib.make_mesh(jax.devices()[:1])
    vgg1 = jax.device_put(vgg, mesh_lib.replicated(mesh1))
    state1, step1 = build(config, mesh1, batch, vgg1)
    init = jax.device_get(state1.variables)
    new4, m4 = run_steps(state4, step4, mesh4, vgg4, batch)
    new1, m1 = run_steps(state1, step1, mesh1, vgg1, batch)
    for a, b in zip(m4, m1):
      assert set(a) == set(b) >= set(tiny_setup.LOSSES)
      for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, err_msg=k)
    p4, p1 = jax.device_get(new4.variables), jax.device_get(new1.variables)
    # Adam divides by sqrt(v): a parameter whose gradient is ~0 moves by round-off amplified to a few
    # 1e-6 (seen: 1.7e-6 on one of 576 entries), so the absolute tolerance is 1e-5.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), p4, p1)
    # Training moved every module (the discriminator too: GAN on).
    assert moved(init, p1) == {"kp_detector": True, "generator": True, "discriminator": True}
    assert int(new4.step) == 2 and int(new4.nonfinite_total) == 0
    # The seed: source and driving pass both get the onset frame's AU keypoints.
    models = model_lib.build_models(config.model)
    kp = step_lib.make_predict_fn(models, config.model)(p1, batch)
    onset = au_values(batch["onset_landmarks"])
    np.testing.assert_allclose(kp["kp_source"], onset, atol=1e-6)
    np.testing.assert_allclose(kp["kp_driving"], onset, atol=1e-6)

    check_nonfinite_batch_skips_update(_INITS[config.name, mesh4], step4, mesh4, vgg4, batch)

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
  """The seed config at 256 px, batch 9, GAN on: the step traces and lowers (shapes only), with
  the state donated."""
  from me_fomm_experiments.configs import seed

  config = seed.get_config("casme2")
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  models, optimizers, abstract_state, vgg = abstract_setup(config, steps_per_epoch=1000)
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
  step = step_lib.jit_train_step(
    step_lib.make_train_step(models, config.model, config, optimizers), mesh
  )
  new_state, metrics = jax.eval_shape(step, abstract_state, batch, vgg)
  assert jax.tree.map(lambda x: (x.shape, x.dtype), new_state.variables) == jax.tree.map(
    lambda x: (x.shape, x.dtype), abstract_state.variables
  )
  assert set(metrics) >= set(tiny_setup.LOSSES) | {"skipped"}
  n_params = sum(
    model_lib.count_params(abstract_state.variables[m])
    for m in ("kp_detector", "generator", "discriminator")
  )
  assert n_params > 50e6  # the full-width vox-256 modules (about 59M parameters), not a toy
  (state_info, batch_info, vgg_info), _ = step.lower(abstract_state, batch, vgg).args_info
  assert all(a.donated for a in jax.tree.leaves(state_info))
  assert not any(a.donated for a in jax.tree.leaves((batch_info, vgg_info)))


def test_bfloat16_compute_keeps_float32_parameters_and_losses():
  """dtype='bfloat16' computes in bf16; parameters, optimiser state and losses stay float32."""
  config = tiny_setup.tiny_config("seed", gan=True)
  config.model.dtype = "bfloat16"
  models, optimizers, abstract_state, vgg = abstract_setup(config)
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tiny_setup.tiny_batch(4))
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
def test_other_variants_train(setup, variant):
  """Learned keypoints (fomm, no GAN) and per-frame prior keypoints with the adaptive mask (tip24,
  GAN on): one step has finite losses and moves the trained modules only; the keypoints are the
  learned ones in [-1, 1] (fomm) or each frame's own AU keypoints (tip24)."""
  _, vgg, batch = setup
  gan = variant == "tip24"
  config = tiny_setup.tiny_config(variant, gan=gan)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  vgg = jax.device_put(vgg, mesh_lib.replicated(mesh))
  state, step = build(config, mesh, batch, vgg)
  init = jax.device_get(state.variables)
  new, metrics = run_steps(state, step, mesh, vgg, batch, n=1)
  metrics = metrics[0]
  assert ("disc_gan" in metrics) == gan
  assert {"perceptual", "equivariance_value", "equivariance_jacobian"} <= set(metrics)
  assert all(np.isfinite(v) for v in metrics.values()) and int(metrics["skipped"]) == 0
  variables = jax.device_get(new.variables)
  assert moved(init, variables) == {"kp_detector": True, "generator": True, "discriminator": gan}

  models = model_lib.build_models(config.model)
  kp = step_lib.make_predict_fn(models, config.model)(variables, batch)
  if variant == "fomm":
    assert kp["kp_source"].shape == (4, config.model.num_kp, 2)
    assert np.all(np.abs(kp["kp_source"]) <= 1) and np.all(np.abs(kp["kp_driving"]) <= 1)
  else:
    assert not np.allclose(batch["driving_landmarks"], batch["onset_landmarks"])
    np.testing.assert_allclose(kp["kp_source"], au_values(batch["source_landmarks"]), atol=1e-6)
    np.testing.assert_allclose(kp["kp_driving"], au_values(batch["driving_landmarks"]), atol=1e-6)
