"""`me-fomm recognize` on synthetic_me/demo: trained on the training identity, tested on the held-out
identity's ground-truth clips, it must reach UF1 >= 0.6 (chance 0.33); and its bad inputs."""

import json
import os
import re
import subprocess
import sys

import pytest

from me_fomm.commands import recognize
from me_fomm.commands.options import make
from me_fomm_datasets.common.testing import build
from me_fomm_datasets.synthetic_me import synthetic_me_dataset_builder as S


def test_synthetic_demo_held_out_identity(synthetic_small, tmp_path, capsys):
  data_dir = str(synthetic_small)
  build(S.SyntheticMe, "demo_64", data_dir)
  out = tmp_path / "recognize"
  opts = make(recognize.OPTIONS, dataset="synthetic_me/demo", data_dir=data_dir, out=str(out))
  result = recognize.run(opts, progress=False)
  assert result["uf1"] >= 0.6 and result["uar"] >= 0.6, result["table"]

  recognize.show(result)
  printed = capsys.readouterr().out.strip().splitlines()
  assert any(line.startswith("held-out identity") for line in printed)
  last = re.fullmatch(r"UF1 (\d\.\d{4}) UAR (\d\.\d{4})", printed[-1])
  assert last and float(last.group(1)) == pytest.approx(result["uf1"], abs=1e-4)

  doc = json.load(open(out / "recognition.json"))
  run = doc["runs"]["without_augmentation"]
  # One fold: the 48 training-identity clips train it, the 12 held-out-identity clips test it.
  assert run["folds"] == 1 and run["train_clips_per_fold"] == {"synthetic_me/astronaut": 48}
  assert {p["subject"] for p in run["predictions"]} == {"synthetic_me/astronaut"}
  assert run["scores"]["overall"]["clips"] == 12
  assert open(out / "confusion.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"

  with pytest.raises(FileExistsError, match="--overwrite"):
    recognize.run(opts, progress=False)


def test_bad_input(tmp_path):
  with pytest.raises(FileNotFoundError, match="me-fomm prepare --dataset=casme2"):
    recognize.run(
      make(recognize.OPTIONS, dataset="casme2", data_dir=str(tmp_path), out=str(tmp_path / "o")),
      progress=False,
    )
  assert not os.path.exists(tmp_path / "o")
  # From the command line: one line, exit status 2.
  r = subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", "recognize", f"--data_dir={tmp_path}", "--out=x"]
    + ["--steps=0"],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 2
  assert r.stderr.strip() == "me-fomm recognize: error: recogniser steps must be >= 1, got 0"
