"""me_fomm: Facial-prior First Order Motion Model for micro-expression generation (JAX/Flax)."""

from me_fomm import xla_cpu as _xla_cpu

# Before any backend starts: XLA:CPU's XNNPACK convolutions (see me_fomm/xla_cpu.py).
_xla_cpu.enable()

__version__ = "0.1.0"
