"""Test-time personalisation (me_fomm.generate.personalize): the loss drops on a tiny model, only the
generator changes, and bad inputs are refused."""

import jax
import numpy as np
import pytest

from me_fomm.generate.personalize import PersonalizeConfig, Personalizer
from me_fomm.model import build_models, init_variables
from me_fomm_experiments.configs.demo import tiny_model


def _face():
  base = np.stack(np.meshgrid(np.linspace(8, 24, 17), np.linspace(10, 24, 4)), -1).reshape(68, 2)
  return base.astype(np.float32)


def test_personalize_loss_drops_and_only_generator_changes():
  cfg = tiny_model("tip24", image_size=32)
  models = build_models(cfg)
  variables = init_variables(models, cfg, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:32, 0:32] / 31.0
  target = np.stack([xx, yy, 0.5 + 0.3 * np.sin(6 * xx)], -1).astype(np.float32)
  target += rng.normal(0, 0.02, target.shape).astype(np.float32)
  target = np.clip(target, 0, 1)
  # L1 only (no VGG download or compile): the test checks the machinery, not the perceptual loss.
  pz = Personalizer(
    models,
    cfg,
    PersonalizeConfig(
      batch_size=2,
      learning_rate=3e-3,
      perceptual=(0, 0, 0, 0, 0),
      scales=(1,),
      identity_fraction=1.0,
    ),
  )
  out, losses = pz.run(variables, target, _face(), steps=30, return_losses=True)
  assert len(losses) == 30 and np.isfinite(losses).all()
  assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses
  same = jax.tree.map(
    lambda a, b: bool(np.array_equal(a, b)), out["kp_detector"], variables["kp_detector"]
  )
  assert all(jax.tree.leaves(same))
  changed = jax.tree.map(
    lambda a, b: not np.array_equal(a, b),
    out["generator"]["params"],
    variables["generator"]["params"],
  )
  assert any(jax.tree.leaves(changed))
  with pytest.raises(ValueError, match="target_landmarks"):
    pz.run(variables, target, None, steps=1)
  with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
    pz.run(variables, target[:16], _face(), steps=1)
  with pytest.raises(
    ValueError, match=r"personalize: target: image values span .* expected \[0, 1\]"
  ):
    pz.run(variables, target * 255, _face(), steps=1)
