"""Faults a long run meets: a damaged latest checkpoint, kill -9 during an asynchronous save, two runs
on one workdir, a full disk while saving."""

import errno
import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys

import jax
import pytest
import tiny_setup

from me_fomm import checkpoint as ckpt_lib
from me_fomm import model as model_lib
from me_fomm.train import checkpointing, mesh, trainer, workdir_lock, writer
from me_fomm.train import state as state_lib


def _copy(reference, tmp_path) -> str:
  workdir = str(tmp_path / "run")
  shutil.copytree(reference[0], workdir, ignore=shutil.ignore_patterns(workdir_lock.LOCK_NAME))
  return workdir


def _largest(pattern: str) -> str:
  return max(glob.glob(pattern, recursive=True), key=os.path.getsize)


def _flip(path: str, start: int = 64, n: int = 32) -> None:
  data = bytearray(open(path, "rb").read())
  start = min(start, len(data) - n)
  data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
  open(path, "wb").write(bytes(data))


def _damage(step_dir: str, how: str) -> None:
  if how == "flipped array bytes":  # TensorStore reads these without complaint: the CRC-32 sees it
    _flip(_largest(os.path.join(step_dir, "models", "ocdbt.process_0", "d", "*")), start=4096)
  elif how == "truncated array file":
    path = _largest(os.path.join(step_dir, "train_state", "ocdbt.process_0", "d", "*"))
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 3)
  elif how == "invalid _sharding JSON":
    with open(os.path.join(step_dir, "models", "_sharding"), "w") as f:
      f.write("{not json")
  elif how == "data-iterator state":
    (path,) = glob.glob(os.path.join(step_dir, "data_iter", "process_*.json"))
    with open(path, "w") as f:
      f.write('{"encoding": "json", "sta')


def _abstract_state():
  config = tiny_setup.trainer_config()
  models = model_lib.build_models(config.model)
  optimizers = state_lib.make_optimizers(config, config.steps_per_epoch)
  return jax.eval_shape(lambda: state_lib.init_train_state(models, config, optimizers))


@pytest.mark.parametrize(
  "how",
  ["flipped array bytes", "truncated array file", "invalid _sharding JSON", "data-iterator state"],
)
def test_resume_falls_back_past_a_damaged_step_and_keeps_it(reference, tmp_path, caplog, how):
  workdir = _copy(reference, tmp_path)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  _damage(os.path.join(ckpt_dir, "12"), how)
  config = tiny_setup.trainer_config()
  with caplog.at_level(logging.WARNING):
    with checkpointing.checkpoint_manager(ckpt_dir, config) as mngr:
      assert checkpointing.refuse_other_config(mngr, config) in (8, 12)
      step, state, data_state = checkpointing.resume(mngr, _abstract_state(), mesh.make_mesh())
  assert step == 8 and int(state.step) == 8 and data_state is not None
  # Kept, moved aside; the warning says which step and what.
  assert os.listdir(os.path.join(workdir, "checkpoints_damaged")) == ["12"]
  assert sorted(d for d in os.listdir(ckpt_dir) if d.isdigit()) == ["8"]
  (warning,) = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
  assert "checkpoint step 12 is damaged" in warning and "checkpoints_damaged" in warning
  if how == "flipped array bytes":
    assert "models[" in warning and "CRC-32" in warning
  elif how == "data-iterator state":
    assert "'data_iter'" in warning


def test_readers_name_the_damaged_step_and_the_previous_good_one(reference, tmp_path):
  ckpt_dir = os.path.join(_copy(reference, tmp_path), "checkpoints")
  _damage(os.path.join(ckpt_dir, "12"), "flipped array bytes")
  with pytest.raises(ckpt_lib.DamagedCheckpointError) as e:
    ckpt_lib.load_models(ckpt_dir)
  msg = str(e.value)
  assert msg.startswith(f"step 12 of {ckpt_dir} is damaged: array models['")
  assert "CRC-32" in msg and msg.endswith(
    "pass --step=8 (the newest step before it that reads completely)"
  )
  assert "\n" not in msg
  assert ckpt_lib.load_models(ckpt_dir, step=8)[0].num_kp == 18
  _damage(os.path.join(ckpt_dir, "8"), "invalid _sharding JSON")
  with pytest.raises(ckpt_lib.DamagedCheckpointError, match="no earlier step reads completely"):
    ckpt_lib.load_models(ckpt_dir)
  with pytest.raises(
    ckpt_lib.DamagedCheckpointError, match=r"step 8 .* item 'models' does not read"
  ):
    ckpt_lib.load_models(ckpt_dir, step=8)


def test_damaged_latest_step_resumes_from_the_previous_with_the_same_losses(reference, tmp_path):
  """Training goes on from step 8 (data position included): steps 9-12 repeat the reference's losses."""
  workdir = _copy(reference, tmp_path)
  _damage(os.path.join(workdir, "checkpoints", "12"), "truncated array file")
  result = trainer.train(tiny_setup.trainer_config(), workdir, data_fn=tiny_setup.tiny_data_fn)
  assert result["step"] == 12
  ref = {r["step"]: r for r in writer.read_metrics(reference[0])}
  rows = writer.read_metrics(workdir)
  assert [r["step"] for r in rows] == list(range(1, 13)) + [9, 10, 11, 12]
  for r in rows[12:]:
    for k in tiny_setup.LOSSES:
      assert r[k] == ref[r["step"]][k], (r["step"], k)
  assert os.listdir(os.path.join(workdir, "checkpoints_damaged")) == ["12"]
  assert ckpt_lib.latest_step(os.path.join(workdir, "checkpoints")) == 12


def test_kill_during_an_async_save_leaves_a_partial_step_that_resume_ignores(
  tmp_path, compile_cache_dir
):
  workdir = str(tmp_path / "run")
  ckpt_dir = os.path.join(workdir, "checkpoints")
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(os.path.dirname(__file__), "train_worker.py"),
      workdir,
      "total_steps=8",
      "debug.kill_in_save_at_step=8",
    ],
    env=tiny_setup.subprocess_env(compile_cache_dir),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == -9, proc.stderr[-3000:]
  # Step 8's save had started (its uncommitted folder is there) when the process died; so had its lock.
  assert any(d.startswith("8.orbax-checkpoint-tmp") for d in os.listdir(ckpt_dir)), os.listdir(
    ckpt_dir
  )
  assert ckpt_lib.latest_step(ckpt_dir) == 4
  assert json.load(open(os.path.join(workdir, workdir_lock.LOCK_NAME)))["pid"] != os.getpid()
  config = tiny_setup.trainer_config()
  config.total_steps = 8
  result = trainer.train(config, workdir, data_fn=tiny_setup.tiny_data_fn)
  assert result["step"] == 8
  assert [r["step"] for r in writer.read_metrics(workdir)][-4:] == [5, 6, 7, 8]
  # The partial folder cleared and 8 written anew; 4 goes as the tiny config keeps one step (and every 8th).
  assert sorted(os.listdir(ckpt_dir)) == ["8"]
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))


def test_a_second_run_on_a_workdir_is_refused_and_a_dead_ones_lock_taken_over(tmp_path, caplog):
  workdir = str(tmp_path)
  path = workdir_lock.acquire(workdir)
  held = open(path).read()
  with pytest.raises(workdir_lock.WorkdirLockedError) as e:
    trainer.train(tiny_setup.trainer_config(), workdir, data_fn=tiny_setup.tiny_data_fn)
  assert f"pid {os.getpid()} on {socket.gethostname()} since " in str(e.value)
  assert "in use by another training run" in str(e.value)
  assert open(path).read() == held and not os.path.exists(os.path.join(workdir, "checkpoints"))
  workdir_lock.release(path)
  assert not os.path.exists(path)
  # A lock whose process has exited (on this host) is taken over with a warning.
  gone = subprocess.run(
    [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
  )
  dead = {
    "host": socket.gethostname(),
    "pid": int(gone.stdout),
    "started": "2026-01-01T00:00:00+00:00",
  }
  open(path, "w").write(json.dumps(dead))
  with caplog.at_level(logging.WARNING):
    assert workdir_lock.acquire(workdir) == path
  assert json.load(open(path))["pid"] == os.getpid()
  assert any(
    f"pid {dead['pid']}" in r.getMessage() and "taking over" in r.getMessage()
    for r in caplog.records
  )
  workdir_lock.release(path)
  # Another host's lock cannot be checked from here: refused, with how to clear it.
  open(path, "w").write(json.dumps(dict(dead, host="elsewhere")))
  with pytest.raises(workdir_lock.WorkdirLockedError, match=f"on elsewhere since .*remove {path}"):
    workdir_lock.acquire(workdir)


def test_a_full_disk_during_a_save_stops_with_the_previous_checkpoint_intact(
  reference, tmp_path, monkeypatch
):
  workdir = _copy(reference, tmp_path)

  def no_space(self, directory, args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))

  monkeypatch.setattr(checkpointing.DataIterHandler, "save", no_space)
  config = tiny_setup.trainer_config()
  config.total_steps = 14
  with pytest.raises(trainer.CheckpointSaveError) as e:
    trainer.train(config, workdir, data_fn=tiny_setup.tiny_data_fn)
  msg = str(e.value)
  assert "\n" not in msg
  assert msg.startswith("could not save checkpoint step 14 to ")
  assert "no space left on the device; the previous checkpoint (step 12) is intact" in msg
  ckpt_dir = os.path.join(workdir, "checkpoints")
  assert ckpt_lib.latest_step(ckpt_dir) == 12
  assert ckpt_lib.load_models(ckpt_dir)[0].num_kp == 18
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))
