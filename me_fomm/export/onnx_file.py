"""ONNX through `jax2onnx`, run with `onnxruntime` (the optional `export` extra).

Every operation of the model converts as it is, including the warps: `me_fomm.model.geometry.grid_sample`
is a gather of the four bilinear corners (GatherND), not a custom op, so no ONNX `GridSample` (and no
TensorRT plugin) is needed. jax2onnx writes ReduceMean with its axes as an input, which is opset 18's form:
`OPSET` is the lowest opset the exported graphs are valid in.
"""

from __future__ import annotations

import numpy as np

from me_fomm.export.graphs import Function, fixed

EXTENSION = ".onnx"
OPSET = 18
EXTRA = "pip install -e '.[export]' (jax2onnx and onnxruntime)"


def require(module: str):
  """Imports `module` of the export extra, or raises a one-line ValueError naming the install."""
  import importlib

  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise ValueError(f"ONNX export needs {module}, which is not installed ({e}); {EXTRA}") from e


def serialize(function: Function, batch: int | None = None, opset: int = OPSET) -> bytes:
  """`function` as an ONNX model (weights as initializers); the batch axis is named `B` unless fixed."""
  jax2onnx = require("jax2onnx")
  names, outputs = list(function.inputs), list(function.outputs)

  def positional(*args):
    out = function.fn(**dict(zip(names, args)))
    return tuple(out[o] for o in outputs)

  # jax2onnx reads a string dimension (the tables' `B`) as a named dynamic axis.
  specs = [function.inputs[n] if batch is None else fixed(function.inputs[n], batch) for n in names]
  model = jax2onnx.to_onnx(
    positional,
    specs,
    model_name=f"me_fomm_{function.name}",
    opset=opset,
    input_names=names,
    output_names=outputs,
  )
  return model.SerializeToString()


class Runner:
  """An onnxruntime session on CPU: `runner(inputs) -> {name: np.ndarray}`."""

  def __init__(self, data: bytes, threads: int | None = None):
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
      options.intra_op_num_threads = int(threads)
    self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    self.outputs = [o.name for o in self.session.get_outputs()]

  def __call__(self, inputs: dict) -> dict:
    feeds = {i.name: np.asarray(inputs[i.name], np.float32) for i in self.session.get_inputs()}
    return dict(zip(self.outputs, self.session.run(self.outputs, feeds)))
