"""me_fomm: Facial-prior First Order Motion Model for micro-expression generation (JAX/Flax)."""

__version__ = "0.1.0"
