"""STSTNet's architecture (the patch product equals the three convolution streams) and the fold-batched
training: a fold learns, never sees a sample its mask leaves out, and trains the same alone or batched."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.recognize import fit
from me_fomm.recognize.ststnet import STSTNet


def _reference(params, x):
  """The paper's layers, written with XLA's convolution and Flax's pooling."""
  p = params["params"]
  maps = []
  for i in range(3):
    y = jax.lax.conv_general_dilated(
      x, p[f"stream_{i}_kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    y = nn.relu(y + p[f"stream_{i}_bias"])
    maps.append(nn.max_pool(y, (3, 3), strides=(3, 3), padding="SAME"))
  y = nn.avg_pool(jnp.concatenate(maps, -1), (2, 2), strides=(2, 2))
  d = p["classifier"]
  return y.reshape(len(x), -1) @ d["kernel"] + d["bias"]


def test_ststnet_layers():
  model = STSTNet()
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 3))
  params = model.init(jax.random.PRNGKey(0), x)
  shapes = {k: v.shape for k, v in params["params"].items() if k != "classifier"}
  assert shapes == {
    "stream_0_kernel": (3, 3, 3, 3),
    "stream_1_kernel": (3, 3, 3, 5),
    "stream_2_kernel": (3, 3, 3, 8),
    "stream_0_bias": (3,),
    "stream_1_bias": (5,),
    "stream_2_bias": (8,),
  }
  assert params["params"]["classifier"]["kernel"].shape == (5 * 5 * 16, 3)
  assert sum(v.size for v in jax.tree_util.tree_leaves(params)) == 1651
  # Non-zero biases so that padding and ReLU are exercised.
  params = jax.tree_util.tree_map(lambda v: v + 0.1, params)
  np.testing.assert_allclose(model.apply(params, x), _reference(params, x), atol=1e-5)


def _toy(n_per_subject=12, subjects=3, seed=0):
  """Features whose class is a bright patch at one of three places, plus noise."""
  rng = np.random.default_rng(seed)
  n = n_per_subject * subjects
  labels = np.arange(n) % 3
  x = rng.normal(0, 0.3, (n, 28, 28, 3)).astype(np.float32)
  for i, c in enumerate(labels):
    x[i, 4 + 8 * c : 10 + 8 * c, 8:20, c] += 1.0
  subject = np.repeat(np.arange(subjects), n_per_subject)
  return x, labels, subject


# One config for the tests below: their programs of the same shapes compile once.
CONFIG = fit.FitConfig(steps=60, batch_size=8, learning_rate=1e-2)


def test_each_fold_learns_its_held_out_subject():
  x, y, subject = _toy()
  masks = subject[None] != np.arange(3)[:, None]
  params, losses = fit.fit_folds(x, y, masks, CONFIG)
  assert losses.shape == (3, 60) and losses[:, -10:].mean() < losses[:, :5].mean()
  logits = fit.predict(params, x)
  assert logits.shape == (3, len(x), 3)
  for f in range(3):
    test = subject == f
    assert (logits[f, test].argmax(-1) == y[test]).mean() > 0.9


@pytest.mark.parametrize(
  "batch_size", [CONFIG.batch_size, 64]
)  # sampled batches; all of a small fold at once
def test_a_fold_never_sees_what_its_mask_leaves_out(batch_size):
  """Fold 0 trained alone on data whose held-out subject is replaced by garbage (features and
  labels) equals fold 0 trained batched with the other folds on the clean data: its training never
  reads what its mask leaves out, and batching folds changes nothing."""
  x, y, subject = _toy()
  masks = subject[None] != np.arange(3)[:, None]
  config = CONFIG if batch_size == CONFIG.batch_size else fit.FitConfig(steps=4, batch_size=64)
  batched, _ = fit.fit_folds(x, y, masks, config)
  poisoned, y2 = x.copy(), y.copy()
  poisoned[subject == 0] = 1e3
  y2[subject == 0] = (y2[subject == 0] + 1) % 3
  alone, _ = fit.fit_folds(poisoned, y2, masks[:1], config, fold_ids=[0])
  jax.tree_util.tree_map(
    lambda a, b: np.testing.assert_allclose(a[0], b[0], atol=1e-4), batched, alone
  )
  # Fold 1 does train on subject 0: its weights depend on that subject's clips.
  other, _ = fit.fit_folds(poisoned, y2, masks[1:2], config, fold_ids=[1])
  kernel = lambda p, i: np.asarray(p["params"]["classifier"]["kernel"][i])
  assert not np.allclose(kernel(batched, 1), kernel(other, 0), atol=1e-4)


def test_fit_refuses_bad_input():
  x, y, subject = _toy()
  with pytest.raises(ValueError, match="no training samples"):
    fit.fit_folds(x, y, np.zeros((1, len(x)), bool))
  with pytest.raises(ValueError, match="do not match"):
    fit.fit_folds(x, y[:-1], np.ones((1, len(x)), bool))
  with pytest.raises(ValueError, match="steps must be >= 1"):
    fit.FitConfig(steps=0).check()
