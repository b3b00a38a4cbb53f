"""XLA:CPU's faster convolution kernels, switched on before the first backend starts.

XLA:CPU's own convolution kernels are slow for the weight gradient (measured: a 3x3 64->64 convolution's
kernel gradient took about 6x its input gradient). The XNNPACK kernels that this jaxlib carries
(`--xla_cpu_use_xnnpack`) measured 1.38x on the demo's training step, batch 8, 2 cores (6.7 -> 9.3 pairs/s),
and the parity tests against the PyTorch fixtures pass with them. The flag is read by the CPU compiler
only, so GPU and TPU runs keep their own kernels. It is set for the jaxlib versions where it was checked
to exist: XLA aborts the process on an unknown flag in XLA_FLAGS.

Set ME_FOMM_XNNPACK=0 to keep XLA's kernels; a user's own `--xla_cpu_use_xnnpack=...` in XLA_FLAGS wins.
Importing jax and starting a backend before importing me_fomm leaves the flags as they were.
"""

from __future__ import annotations

import importlib.metadata
import os

FLAG = "--xla_cpu_use_xnnpack=true"
# jaxlib versions (major, minor) whose XLA:CPU knows the flag (checked by `tests/test_xla_cpu.py`).
CHECKED = ((0, 10),)


def _jaxlib_version() -> tuple[int, int] | None:
  try:
    parts = importlib.metadata.version("jaxlib").split(".")
    return int(parts[0]), int(parts[1])
  except (importlib.metadata.PackageNotFoundError, ValueError, IndexError):
    return None


def wanted(environ=os.environ, version=None) -> bool:
  """Whether to add FLAG: opted in (default), not set by the user, on a jaxlib where it exists."""
  if environ.get("ME_FOMM_XNNPACK", "1") == "0":
    return False
  if "xla_cpu_use_xnnpack" in environ.get("XLA_FLAGS", ""):
    return False
  return (version or _jaxlib_version()) in CHECKED


def enable(environ=os.environ) -> None:
  """Appends FLAG to XLA_FLAGS when `wanted`; call before jax starts a backend."""
  if wanted(environ):
    environ["XLA_FLAGS"] = (environ.get("XLA_FLAGS", "") + " " + FLAG).strip()
