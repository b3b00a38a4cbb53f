"""Loading the reference fixtures of the original PyTorch models (shared by the tests in this folder)."""

from __future__ import annotations

import json
import os

import numpy as np

REF_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "reference")
NAMES = ("fomm_small_s0", "seed_small_s0")


class Reference:
  """One fixture: arrays (NCHW as torch wrote them), its config and the converted variables."""

  def __init__(self, name: str):
    from me_fomm import convert
    from me_fomm.model import build_models, from_original

    self.name = name
    self.npz_path = os.path.join(REF_DIR, f"{name}.npz")
    with np.load(self.npz_path) as data:
      self.arrays = {k: data[k] for k in data.files}
    with open(os.path.join(REF_DIR, f"{name}.json")) as f:
      self.json = json.load(f)
    self.cfg = from_original(self.json)
    self.models = build_models(self.cfg)
    self.variables = convert.convert_state_dicts(convert.load_state_dicts(self.npz_path), self.cfg)

  def __getitem__(self, key):
    return self.arrays[key]

  def nhwc(self, key):
    """A (B, C, H, W) fixture array as (B, H, W, C); (B, K, C, H, W) as (B, K, H, W, C)."""
    a = self.arrays[key]
    return np.moveaxis(a, -3, -1)

  def kp(self, prefix):
    return {k: self.arrays[f"{prefix}/{k}"] for k in ("value", "jacobian")}

  @property
  def is_seed(self) -> bool:
    return self.cfg.kp_mode == "prior"


_CACHE: dict[str, Reference] = {}


def get_reference(name: str) -> Reference:
  """The fixture `name`, loaded and converted once per process."""
  if name not in _CACHE:
    _CACHE[name] = Reference(name)
  return _CACHE[name]


def max_err(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
