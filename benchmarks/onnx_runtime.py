"""Generation on onnxruntime (CPU provider): the exported animation (`me_fomm.export`) beside JAX's figure.

The ONNX graph is the computation of one Animator batch (driving keypoints, relative transfer, dense motion,
generator; `me-fomm export --verify` checks the numbers), converted by jax2onnx for a fixed batch and run
by onnxruntime with its default threads (all cores). Unlike the JAX row it encodes the target in every
call: the exported graph takes the target image, not its features. Without the export extra there is no row.
"""

from __future__ import annotations

import time

import jax
import numpy as np


def row(cfg, models, variables, batch: int, steps: int, repeats: int, warmup: int) -> dict | None:
  """One throughput row (`runtime='onnxruntime'`) for `batch` frames per call, or None without the extra.

  `compile_time_s` is onnxruntime's session creation (graph optimisation); `convert_time_s` jax2onnx's.
  """
  try:
    import jax2onnx  # noqa: F401
    import onnxruntime  # noqa: F401
  except ImportError:
    return None
  from benchmarks.measure import throughput_row
  from benchmarks.train import synthetic_landmarks
  from me_fomm.export import graphs, onnx_file

  cfg = graphs.export_config(cfg)
  source, animate = graphs.functions(models, variables, cfg)
  t = time.perf_counter()
  blob = onnx_file.serialize(animate, batch=batch)
  convert_s = time.perf_counter() - t
  t = time.perf_counter()
  runner = onnx_file.Runner(blob)
  compile_s = time.perf_counter() - t

  rng = np.random.default_rng(0)
  size, c = int(cfg.image_size), int(cfg.num_channels)
  images = rng.random((batch + 1, size, size, c), np.float32)
  lms = synthetic_landmarks(batch + 1, size, rng)
  src_in = {"image": images[:2], **({"landmarks": lms[:2]} if graphs.uses_landmarks(cfg) else {})}
  kp = jax.jit(source.fn)(**src_in)
  feeds = graphs.animate_inputs(kp, images[:1], images[1:], lms[1:], lms[1:2])
  out = throughput_row(
    None, lambda: runner(feeds), batch, "frames/s", compile_s, steps, repeats, warmup
  )
  out.update(
    runtime="onnxruntime",
    onnxruntime=onnxruntime.__version__,
    opset=onnx_file.OPSET,
    convert_time_s=convert_s,
  )
  return out
