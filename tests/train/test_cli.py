"""`python -m experiments.train` and `me-fomm train`: flags, config files with arguments, overrides."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("entry", [["-m", "experiments.train"], ["-m", "me_fomm.cli", "train"]])
def test_train_entry_points_parse_config_argument_and_overrides(entry, tmp_path):
  # An override that makes the config inconsistent: the run must stop at validation with a
  # message naming both fields, before touching data or compiling anything.
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
    [
      sys.executable,
      *entry,
      "--config=seed:casme2",
      f"--workdir={tmp_path}",
      "--config.data.image_size=128",
      "--config.batch_size=16",
    ],
    # `python -m experiments.train` runs from the repo root; me-fomm from anywhere (a built-in config
    # is named).
    cwd=REPO if entry[1] == "experiments.train" else tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "data.image_size=128 differs from model.image_size=256" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_config_files_and_variants():
  from me_fomm_experiments.configs import demo, fomm_vox, seed, tip24

  s = seed.get_config("casme2")
  assert (s.data.name, s.batch_size, s.num_epochs, s.num_repeats) == ("casme2", 9, 100, 50)
  assert tuple(s.optim.epoch_milestones) == (60, 90) and (s.optim.b1, s.optim.b2) == (0.5, 0.999)
  assert s.loss.generator_gan == 1 and tuple(s.loss.feature_matching) == (10,) * 4
  assert tuple(s.loss.perceptual) == (10,) * 5 and tuple(s.loss.scales) == (1, 0.5, 0.25, 0.125)
  assert s.loss.equivariance_value == 10 and s.loss.equivariance_jacobian == 10
  assert s.model.kp_mode == "prior" and s.model.prior_frames == "onset" and s.model.num_kp == 18
  assert tip24.get_config().model.prior_frames == "per_frame"
  v = fomm_vox.get_config()
  assert (v.model.num_kp, v.model.kp_mode, v.batch_size, v.num_repeats, v.loss.generator_gan) == (
    10,
    "learned",
    40,
    75,
    0,
  )
  d = demo.get_config()
  assert d.model.image_size == 64 and d.data.name == "synthetic_me/demo"
  assert d.model.variant == "tip24" and d.loss.landmark_flow == 300 and d.total_steps == 800
  assert d.model.generator.dense_motion.mask_prior == 10 and d.evaluate.adapt_scale
  q = demo.get_config("seed,quick")
  assert q.model.variant == "seed" and q.data.name == "synthetic_me/small" and q.total_steps == 3
  assert q.model.kp_detector.block_expansion == 4 and q.loss.equivariance_value == 0
  with pytest.raises(ValueError, match="choose tip24, seed, fomm"):
    demo.get_config("vox")
  with pytest.raises(ValueError, match="unknown corpus"):
    seed.get_config("vox")


def test_a_bad_model_field_stops_training_before_the_workdir_is_made(tmp_path):
  from me_fomm.train import trainer
  from me_fomm_experiments.configs import demo

  c = demo.get_config()
  c.model.generator.dense_motion.mask_prior = -1.0
  with pytest.raises(ValueError, match="mask_prior=-1.0 must be a finite weight >= 0"):
    trainer.train(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_lr_schedule_drops_tenfold_at_epoch_milestones():
  from me_fomm.train.state import lr_schedule

  f = lr_schedule(2e-4, (60, 90), steps_per_epoch=10)
  assert abs(f(599) - 2e-4) < 1e-12 and abs(f(600) - 2e-5) < 1e-12
  assert abs(f(899) - 2e-5) < 1e-12 and abs(f(900) - 2e-6) < 1e-13
  with pytest.raises(ValueError, match="steps_per_epoch"):
    lr_schedule(2e-4, (60,), 0)
