"""`me-fomm prepare` end to end (subprocess: absl flags are process-global)."""

import json
import os
import subprocess
import sys


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", "prepare", *args],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
  )


def test_prepare_casme2_reports_skips(fake_corpora, tmp_path):
  out = _run(
    "--dataset=casme2", f"--manual_dir={fake_corpora}", f"--data_dir={tmp_path}", "--image_size=64"
  )
  assert out.returncode == 0, out.stderr
  assert "clips written: 4" in out.stdout and "clips skipped: 4" in out.stdout
  assert "sub04/EP05_01" in out.stdout and "no face found" in out.stdout
  report = json.load(open(tmp_path / "casme2" / "64" / "1.0.0" / "build_report.json"))
  assert report["written"] == {"train": 4}
  again = _run(
    "--dataset=casme2", f"--manual_dir={fake_corpora}", f"--data_dir={tmp_path}", "--image_size=64"
  )
  assert "already built" in again.stdout


def test_prepare_errors(fake_corpora, tmp_path):
  out = _run("--dataset=samm", f"--data_dir={tmp_path}")
  # Bad input: one line, exit 2, no traceback.
  assert out.returncode == 2 and "--manual_dir" in out.stderr and "Traceback" not in out.stderr
  out = _run("--dataset=samm", f"--data_dir={tmp_path}", f"--manual_dir={tmp_path / 'nope'}")
  assert out.returncode == 2 and "is not a folder" in out.stderr
  out = _run(
    "--dataset=casme2",
    f"--manual_dir={fake_corpora}",
    f"--data_dir={tmp_path}",
    "--image_size=64",
    "--strict",
  )
  assert out.returncode == 2 and "strict" in out.stderr
  assert not (tmp_path / "casme2" / "64" / "1.0.0").exists()


def test_reading_and_loading_never_import_tensorflow(synthetic_small):
  code = (
    "import sys\n"
    "from me_fomm.data import pipeline, sources\n"
    f"src = sources.load('synthetic_me/small', {str(synthetic_small)!r}, 'train')\n"
    "b = next(pipeline.pair_loader(src, 2, read_threads=0))\n"
    "assert b['source'].shape == (2, 64, 64, 3)\n"
    "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    "print('ok')\n"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
