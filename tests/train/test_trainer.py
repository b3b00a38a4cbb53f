"""trainer.train: learning, outputs, checkpoints, kill/SIGTERM resume, refusal, NaN stop."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tiny_setup

from me_fomm import checkpoint as ckpt_lib
from me_fomm.train import checkpointing, trainer, writer


def by_step(rows):
  """Last row written for each step (a resumed run rewrites the steps after its checkpoint)."""
  return {r["step"]: r for r in rows}


def test_short_run_lowers_loss_and_writes_outputs(reference, caplog):
  workdir, result = reference
  rows = by_step(writer.read_metrics(workdir))
  assert sorted(rows) == list(range(1, 13)) and result["step"] == 12
  first = np.mean([rows[s]["perceptual"] for s in (1, 2, 3)])
  last = np.mean([rows[s]["perceptual"] for s in (10, 11, 12)])
  assert last < 0.97 * first, (first, last)
  assert all(np.isfinite(rows[s][k]) for s in rows for k in tiny_setup.LOSSES)
  assert result["nonfinite_total"] == 0 and not result["preempted"]
  assert all(rows[s]["pairs_per_s"] > 0 for s in rows)
  # TensorBoard event file (tensorboardX) and the progress images.
  assert any(
    f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tensorboard"))
  )
  images = sorted(os.listdir(os.path.join(workdir, "images")))
  assert images == ["step_00000006.png", "step_00000012.png"]
  import imageio.v3 as iio

  img = iio.imread(os.path.join(workdir, "images", images[0]))
  assert img.shape == (4 * 32, 3 * 32, 3) and img.std() > 0
  # Keep the last checkpoint (12) and every 8th (8); 4 is gone.
  mngr_dir = os.path.join(workdir, "checkpoints")
  assert sorted(int(d) for d in os.listdir(mngr_dir) if d.isdigit()) == [8, 12]
  # The models item reads back through the project's one checkpoint reader.
  model_config, variables = ckpt_lib.load_models(mngr_dir, expect=tiny_setup.trainer_config().model)
  assert model_config.num_kp == 18 and set(variables) == {
    "kp_detector",
    "generator",
    "discriminator",
  }


def test_resume_after_sigkill_and_sigterm_reproduces_losses(reference, tmp_path, compile_cache_dir):
  ref_rows = by_step(writer.read_metrics(reference[0]))
  workdir = str(tmp_path / "run")
  # 1. A separate process trains and is SIGKILLed after step 6 (checkpoint at 4 committed).
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(os.path.dirname(__file__), "train_worker.py"),
      workdir,
      "debug.kill_at_step=6",
    ],
    env=tiny_setup.subprocess_env(compile_cache_dir),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == -9, proc.stderr[-3000:]
  assert ckpt_lib.latest_step(os.path.join(workdir, "checkpoints")) == 4
  # 2. Restart: resumes from 4; a SIGTERM after step 9 makes it save at the next step and stop.
  config = tiny_setup.trainer_config()
  config.debug.sigterm_at_step = 9
  result = trainer.train(config, workdir, data_fn=tiny_setup.tiny_data_fn)
  assert result["preempted"] and result["step"] == 10
  assert ckpt_lib.latest_step(os.path.join(workdir, "checkpoints")) == 10
  # 3. Restart again: runs 11 and 12.
  result = trainer.train(tiny_setup.trainer_config(), workdir, data_fn=tiny_setup.tiny_data_fn)
  assert result["step"] == 12 and not result["preempted"]
  rows = writer.read_metrics(workdir)
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10, 11, 12]
  # Every step's losses, before the kill, after it and after the SIGTERM, are the reference's.
  for r in rows:
    for k in tiny_setup.LOSSES:
      assert r[k] == ref_rows[r["step"]][k], (r["step"], k, r[k], ref_rows[r["step"]][k])


def test_workdir_of_another_config_is_refused(reference):
  workdir, _ = reference
  config = tiny_setup.trainer_config()
  config.batch_size = 8
  config.loss.perceptual = (1.0,) * 5
  config.model.generator.block_expansion = 8
  with pytest.raises(checkpointing.ConfigMismatchError) as e:
    trainer.train(config, workdir, data_fn=tiny_setup.tiny_data_fn)
  msg = str(e.value)
  assert "another config" in msg and "fresh --workdir" in msg
  assert "batch_size: 4 in the checkpoint, 8 expected" in msg
  assert (
    "loss.perceptual" in msg and "generator.block_expansion: 4 in the checkpoint, 8 expected" in msg
  )
  # Run-control fields may change (e.g. train longer, log less often).
  ok = tiny_setup.trainer_config()
  ok.log_every = 5
  ok.total_steps = 12
  assert trainer.train(ok, workdir, data_fn=tiny_setup.tiny_data_fn)["step"] == 12


def test_nonfinite_losses_in_a_row_stop_with_last_good_checkpoint(tmp_path):
  def poisoned(config, local_batch, shard_index, shard_count):
    loader, n = tiny_setup.tiny_data_fn(config, local_batch, shard_index, shard_count)

    class Poisoned:
      count = 0

      def __next__(self):
        batch = next(loader)
        self.count += 1
        if self.count > 2:  # batches 3, 4, ... carry a NaN frame
          batch = dict(batch, source=np.full_like(batch["source"], np.nan))
        return batch

      def get_state(self):
        return {"inner": loader.get_state(), "count": self.count}

      def set_state(self, s):
        loader.set_state(s["inner"])
        self.count = s["count"]

    return Poisoned(), n

  config = tiny_setup.trainer_config()
  config.checkpoint_every = 2
  config.max_nonfinite_in_a_row = 2
  workdir = str(tmp_path / "nan")
  with pytest.raises(
    trainer.NonFiniteLossError, match=r"2 updates in a row.*last good checkpoint is step 2"
  ):
    trainer.train(config, workdir, data_fn=poisoned)
  rows = by_step(writer.read_metrics(workdir))
  assert rows[3]["skipped"] == 1 and rows[4]["skipped"] == 1 and rows[4]["nonfinite_total"] == 2
  ckpt_dir = os.path.join(workdir, "checkpoints")
  assert ckpt_lib.latest_step(ckpt_dir) == 2
  _, variables = ckpt_lib.load_models(ckpt_dir)
  import jax

  assert all(np.isfinite(x).all() for x in jax.tree.leaves(variables))


def test_checkpoint_restores_onto_another_mesh(reference):
  """A checkpoint written by the 4-device run restores onto a 1-device mesh with the same values."""
  import jax
  import orbax.checkpoint as ocp

  from me_fomm import model as model_lib
  from me_fomm.train import mesh as mesh_lib
  from me_fomm.train import state as state_lib

  workdir, _ = reference
  config = tiny_setup.trainer_config()
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, config.steps_per_epoch)
  abstract = jax.eval_shape(lambda: state_lib.init_train_state(models, config, optimizers))
  mesh1 = mesh_lib.make_mesh(jax.devices()[:1])
  with ocp.CheckpointManager(os.path.join(workdir, "checkpoints")) as mngr:
    state, data_state = checkpointing.restore(mngr, 12, abstract, mesh1)
  assert int(state.step) == 12 and data_state is not None
  leaf = jax.tree.leaves(state.variables)[0]
  assert leaf.sharding.device_set == {jax.devices()[0]}
  _, variables = ckpt_lib.load_models(os.path.join(workdir, "checkpoints"), step=12)
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), state.variables, variables
  )
