"""Configs by name from any folder, and config mistakes as one line with the fix (exit 2, no traceback)."""

import os
import subprocess
import sys

import pytest

from me_fomm.commands import configs


def test_builtin_configs_by_name_and_file(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # not the repo root: names still resolve (installed configs)
  assert {"demo", "seed", "tip24", "fomm_vox"} <= set(configs.builtin_names())
  path, arg = configs.config_file("demo:seed,quick")
  assert os.path.isfile(path) and path.endswith("demo.py") and arg == "seed,quick"
  assert configs.load("seed:casme2").data.name == "casme2"
  assert configs.load("demo").model.variant == "tip24"
  mine = tmp_path / "mine.py"
  mine.write_text(
    "import ml_collections\ndef get_config(arg=None):\n  return ml_collections.ConfigDict({'x': arg})\n"
  )
  assert configs.load(f"{mine}:7").x == "7"
  with pytest.raises(configs.ConfigSpecError, match=r"the built-in 'demo' is --config=demo:tip24"):
    configs.load("experiments/configs/demo.py:tip24")
  with pytest.raises(configs.ConfigSpecError, match="did you mean --config=demo"):
    configs.load("dmeo")
  with pytest.raises(configs.ConfigSpecError, match="choose tip24, seed, fomm"):
    configs.load("demo:nosuch")
  assert configs.expected_model_config("fomm").num_kp == 10
  assert configs.expected_model_config("demo:seed").image_size == 64


def _train(tmp_path, *args):
  return subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", "train", f"--workdir={tmp_path / 'w'}", *args],
    cwd=tmp_path,
    env=dict(os.environ, JAX_PLATFORMS="cpu"),
    capture_output=True,
    text=True,
    timeout=300,
  )


@pytest.mark.parametrize(
  "args,expected",
  [
    (
      ["--config=demo", "--config.batch_sizee=3"],
      "--config.batch_sizee: the config has no field 'batch_sizee'; did you mean --config.batch_size?",
    ),
    (
      ["--config=demo", "--config.loss.perceptul=(1,)"],
      "did you mean --config.loss.perceptual?",
    ),
    (
      ["--config=demo", "--config.batch_size=abc"],
      "--config.batch_size=abc: invalid literal for int()",
    ),
    (["--config=demo:nosuch"], "unknown variant 'nosuch'; choose tip24, seed, fomm"),
    (["--config=experiments/configs/demo.py"], "the built-in 'demo' is --config=demo"),
    (["--config=nowhere.py"], "no config file at"),
  ],
)
def test_config_mistakes_are_one_line(tmp_path, args, expected):
  proc = _train(tmp_path, *args)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("me-fomm train: error: "), proc.stderr[-2000:]
  assert expected in lines[0]
  assert not (tmp_path / "w").exists()
