"""Tiny models exported in both formats, loaded back from the files and compared with the JAX model."""

import json
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from me_fomm import export
from me_fomm.export import verify
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _frames(synthetic_small, size=32):
  return verify.frames_to_check(verify.corpus_clip(size, str(synthetic_small)), count=5)


def test_stablehlo_symbolic_batch_matches_the_animator(tmp_path, tiny_model_of, synthetic_small):
  model = tiny_model_of("tip24")
  result = export.export(model, "stablehlo", str(tmp_path / "tip24.stablehlo"))
  files = result["files"]
  assert files["source"].endswith("tip24.source.stablehlo") and files["manifest"].endswith(
    "tip24.json"
  )
  manifest = json.loads(open(files["manifest"]).read())
  assert manifest["batch"] is None
  assert manifest["functions"]["source"]["inputs"] == {
    "image": ["B", 32, 32, 3],
    "landmarks": ["B", 68, 2],
  }
  # The files load back with jax.export alone, and the symbolic batch takes any size.
  exp = jax.export.deserialize(bytearray(open(files["source"], "rb").read()))
  assert str(exp.in_avals[0].shape[0]) == "B"
  exported = export.load(files["manifest"])
  frames = _frames(synthetic_small)
  ours, ref = verify.run_export(exported, frames), verify.run_reference(model, frames)
  assert len(ours["prediction"]) == len(frames["driving"]) == 5
  for k in ref:
    np.testing.assert_allclose(ours[k], ref[k], atol=1e-5, err_msg=k)
  # Landmarks -> AU keypoints -> region mask inside the graph: the values are the landmarks' AU
  # keypoints, and moved landmarks (another mask) change the Jacobians of the same image.
  one = {"image": frames["driving"][:1], "landmarks": frames["driving_landmarks"][:1]}
  moved = dict(one, landmarks=one["landmarks"] + 3.0)
  kp, kp_moved = exported.source(one), exported.source(moved)
  au = au_px_to_value(landmarks_to_au(one["landmarks"]), 32)
  np.testing.assert_allclose(kp["kp_value"], au, atol=1e-6)
  assert np.abs(kp["kp_jacobian"] - kp_moved["kp_jacobian"]).max() > 1e-3


def test_onnx_fixed_batch_verifies(tmp_path, tiny_model_of, synthetic_small):
  pytest.importorskip("jax2onnx")  # the export extra (also in the test extra, so CI runs these)
  ort = pytest.importorskip("onnxruntime")
  model = tiny_model_of("seed")
  result = export.export(model, "onnx", str(tmp_path / "seed"), batch=2)
  assert result["opset"] == export.onnx_file.OPSET
  session = ort.InferenceSession(result["files"]["animate"], providers=["CPUExecutionProvider"])
  shapes = {i.name: i.shape for i in session.get_inputs()}
  assert shapes["driving"] == [2, 32, 32, 3] and shapes["onset_landmarks"] == [1, 68, 2]
  # Five frames in batches of two: the last batch is padded and cut back.
  check = verify.verify(model, export.load(result["files"]["manifest"]), str(synthetic_small), 5)
  assert check["frames"] == 5 and check["max_abs_difference"] <= verify.TOLERANCE, check


def _readme_onnx_example() -> str:
  blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
  return next(b for b in blocks if "onnxruntime" in b)


RUN_EXAMPLE = """
import sys
inputs = np.load(sys.argv[2])
frames = animate_onnx(sys.argv[1], *(inputs[k] for k in ("target", "target_landmarks", "driving", "driving_landmarks")), batch=3)
np.save(sys.argv[3], frames)
assert not [m for m in sys.modules if m.split(".")[0] in ("jax", "flax", "me_fomm")], "imported JAX"
"""


def test_readme_onnx_example_animates_without_jax(tmp_path, tiny_model_of, synthetic_small):
  """The README's onnxruntime + NumPy example, run as written in a fresh interpreter on a symbolic-batch
  export, gives the JAX animator's frames."""
  pytest.importorskip("jax2onnx")
  pytest.importorskip("onnxruntime")
  model = tiny_model_of("tip24")
  export.export(model, "onnx", str(tmp_path / "tip24"))
  frames = _frames(synthetic_small)
  np.savez(tmp_path / "inputs.npz", **frames)
  args = [str(tmp_path / "tip24"), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")]
  code = _readme_onnx_example() + RUN_EXAMPLE
  proc = subprocess.run(
    [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  ref = verify.run_reference(model, frames)["prediction"]
  np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ref, atol=1e-5)
