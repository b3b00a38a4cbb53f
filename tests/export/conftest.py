"""Tiny models to export, and the small synthetic corpus the verification reads (built once per session)."""

import functools

import jax
import pytest

from me_fomm.generate.pipeline import LoadedModel
from me_fomm.model import build_models, init_variables
from me_fomm_datasets.common.testing import synthetic_small  # noqa: F401
from me_fomm_experiments.configs.demo import tiny_model


@functools.lru_cache(maxsize=None)
def tiny(variant: str, **overrides) -> LoadedModel:
  """A tiny 32 px model of `variant` with fresh variables (the export does not depend on training)."""
  cfg = tiny_model(variant, image_size=32, **overrides)
  models = build_models(cfg)
  variables = init_variables(models, cfg, jax.random.key(0))
  # A fresh Jacobian head is zero (identity Jacobians whatever the image): give it weights, so the
  # hourglass and, for prior variants, the region mask reach the outputs the tests compare.
  head = variables["kp_detector"]["params"].get("jacobian")
  if head is not None:
    head["kernel"] = 0.05 * jax.random.normal(jax.random.key(1), head["kernel"].shape)
  return LoadedModel(models, variables, cfg, "tiny")


@pytest.fixture
def tiny_model_of():
  return tiny
