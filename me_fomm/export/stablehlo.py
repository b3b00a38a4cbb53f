"""StableHLO through `jax.export`: a function -> serialised bytes -> a callable again.

The serialised `jax.export.Exported` holds the StableHLO module with the weights as constants; it loads
back with `jax.export.deserialize(data)` in any JAX of a compatible serialisation version (no model code
needed), and `.call({name: array})` runs it. The batch axis is symbolic (`B`, any size >= 1) unless a
fixed batch is asked for.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from me_fomm.export.graphs import Function, fixed

EXTENSION = ".stablehlo"


def serialize(function: Function, batch: int | None = None, platforms=None) -> bytes:
  """`function` exported for `batch` (None: symbolic) on `platforms` (default: this machine's)."""
  dim = jax.export.symbolic_shape("B")[0] if batch is None else int(batch)
  args = {
    name: jax.ShapeDtypeStruct(fixed(shape, dim), jnp.float32)
    for name, shape in function.inputs.items()
  }
  fn = jax.jit(lambda inputs: function.fn(**inputs))
  exported = jax.export.export(fn, platforms=platforms)(args)
  return bytes(exported.serialize())


class Runner:
  """A deserialised export: `runner(inputs) -> {name: np.ndarray}`; `inputs` a {name: array} dict."""

  def __init__(self, data: bytes):
    self.exported = jax.export.deserialize(bytearray(data))
    self._call = jax.jit(self.exported.call)

  def __call__(self, inputs: dict) -> dict:
    out = self._call({k: jnp.asarray(v, jnp.float32) for k, v in inputs.items()})
    return {k: np.asarray(v) for k, v in out.items()}
