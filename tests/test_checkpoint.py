"""The checkpoint format: round trip, config refusal, and clear errors for folders that are not ours."""

import numpy as np
import pytest

from me_fomm import checkpoint


def _variables(width=3):
  return {
    "kp_detector": {
      "params": {"conv": {"kernel": np.arange(width * 2, dtype=np.float32).reshape(width, 2)}}
    },
    "generator": {
      "params": {"b": np.ones((4,), np.float32)},
      "batch_stats": {"m": np.zeros((4,), np.float32)},
    },
    "discriminator": {"params": {"w": np.full((2, 2), 3.0, np.float32)}},
  }


def test_round_trip_latest_step(tmp_path):
  cfg = {"variant": "fomm", "num_kp": 10, "generator": {"scales": (1, 0.5)}}
  checkpoint.save_models(tmp_path / "ck", _variables(), cfg, step=3)
  checkpoint.save_models(tmp_path / "ck", _variables(width=5), cfg, step=7)
  got_cfg, got = checkpoint.load_models(str(tmp_path / "ck"))
  assert got_cfg.num_kp == 10 and list(got_cfg.generator.scales) == [1, 0.5]
  np.testing.assert_array_equal(
    got["kp_detector"]["params"]["conv"]["kernel"],
    _variables(5)["kp_detector"]["params"]["conv"]["kernel"],
  )
  _, old = checkpoint.load_models(str(tmp_path / "ck"), step=3)
  assert old["kp_detector"]["params"]["conv"]["kernel"].shape == (3, 2)
  assert checkpoint.latest_step(str(tmp_path / "ck")) == 7


def test_other_config_is_refused_with_differences(tmp_path):
  checkpoint.save_models(tmp_path / "ck", _variables(), {"variant": "fomm", "num_kp": 10}, step=0)
  with pytest.raises(checkpoint.CheckpointError) as e:
    checkpoint.load_models(str(tmp_path / "ck"), expect={"variant": "seed", "num_kp": 18})
  msg = str(e.value)
  assert "num_kp: 10 in the checkpoint, 18 expected" in msg and "variant" in msg


def test_missing_and_foreign_folders(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint directory"):
    checkpoint.load_models(str(tmp_path / "nope"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(checkpoint.CheckpointError, match="holds no checkpoint step"):
    checkpoint.load_models(str(tmp_path / "empty"))
  with pytest.raises(checkpoint.CheckpointError, match="lack"):
    checkpoint.save_models(tmp_path / "x", {"generator": {}}, {})


def test_tree_differences_lists_every_misfit():
  found = {"a": np.zeros((2, 3)), "b": np.zeros(4)}
  expected = {"a": np.zeros((2, 2)), "c": np.zeros(1)}
  lines = "\n".join(checkpoint.tree_differences(found, expected))
  assert (
    "missing: ['c']" in lines and "unexpected: ['b']" in lines and "wrong shape: ['a']" in lines
  )
