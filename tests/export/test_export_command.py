"""`me-fomm export` on a checkpoint: --verify's last line, and bad input as one line (exit 2)."""

import subprocess
import sys

import pytest

from me_fomm.checkpoint import save_models
from me_fomm.commands import export as export_cmd
from me_fomm.commands import options as O


def _checkpoint(tmp_path, model, name="ckpt"):
  save_models(str(tmp_path / name), model.variables, model.config)
  return str(tmp_path / name)


def test_export_and_verify_a_checkpoint(tmp_path, tiny_model_of, synthetic_small, capsys):
  ckpt = _checkpoint(tmp_path, tiny_model_of("fomm"))
  opts = O.make(
    export_cmd.OPTIONS,
    checkpoint=ckpt,
    format="stablehlo",
    out=str(tmp_path / "out" / "fomm"),
    verify=True,
    data_dir=str(synthetic_small),
  )
  result = export_cmd.run(opts)
  export_cmd.show(result)
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[-1].startswith("max abs difference ")
  assert float(lines[-1].split()[-1]) <= 1e-4
  assert result["verify"]["clip"].startswith("synthetic_me/small:")
  assert result["checkpoint"] == ckpt and result["step"] == 0
  # An existing export is not replaced without --overwrite.
  with pytest.raises(FileExistsError, match="--overwrite"):
    export_cmd.run(opts)


def test_bad_input_is_one_line(tmp_path, tiny_model_of, monkeypatch):
  no_jacobian = _checkpoint(tmp_path, tiny_model_of("fomm", estimate_jacobian=False), "nojac")
  make = lambda **kw: O.make(export_cmd.OPTIONS, **{"checkpoint": no_jacobian, **kw})
  with pytest.raises(ValueError, match="estimate_jacobian=False"):
    export_cmd.run(make(format="stablehlo", out=str(tmp_path / "a")))
  with pytest.raises(ValueError, match="--format is required"):
    export_cmd.run(make(out=str(tmp_path / "b")))
  with pytest.raises(ValueError, match="--batch must be >= 1"):
    export_cmd.run(make(format="stablehlo", out=str(tmp_path / "c"), batch=0))
  # The missing extra is named before any work.
  monkeypatch.setitem(sys.modules, "jax2onnx", None)
  with pytest.raises(ValueError, match=r"pip install -e '\.\[export\]'"):
    export_cmd.run(make(format="onnx", out=str(tmp_path / "d")))
  assert not list(tmp_path.glob("[abcd]*"))


def test_unwritable_output_exits_2(tmp_path):
  (tmp_path / "a_file").write_text("x")
  proc = subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", "export", "--checkpoint=nowhere", "--format=stablehlo"]
    + [f"--out={tmp_path / 'a_file' / 'demo'}"],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 2, proc.stderr
  err = proc.stderr.strip().splitlines()
  assert err[-1].startswith("me-fomm export: error: --out=") and "cannot write" in err[-1]
  assert "Traceback" not in proc.stderr
