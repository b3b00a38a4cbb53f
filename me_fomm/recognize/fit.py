"""Train one STSTNet per fold, all folds in one compiled program: `jax.vmap` over the folds of a
`lax.scan` over the Adam steps.

Every fold sees the same array of samples; a fold is a row of a (folds, samples) 0/1 mask saying which
samples it trains on. Each step draws `batch_size` training samples of the fold (with replacement, in
proportion to the mask), or, when the fold has no more than `batch_size` samples, takes them all with
the mask as weights. All folds start from the same initial weights (the published code resets the
network per subject), so folds differ only by their data.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from me_fomm.recognize.ststnet import STSTNet, patches


@dataclasses.dataclass(frozen=True)
class FitConfig:
  """steps: Adam updates per fold; batch_size: samples per update; learning_rate; seed: init and
  sampling. The published code trains 800 epochs at 5e-5 (batch 256); a larger rate reaches the same
  training loss in far fewer steps, which is what makes the protocol minutes on a CPU."""

  steps: int = 500
  batch_size: int = 64
  learning_rate: float = 2e-3
  seed: int = 0
  num_classes: int = 3

  def check(self) -> None:
    for name in ("steps", "batch_size", "num_classes"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"recogniser {name} must be >= 1, got {getattr(self, name)}")
    if not self.learning_rate > 0:
      raise ValueError(f"recogniser learning_rate must be > 0, got {self.learning_rate}")


def _cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def fit_folds(features, labels, masks, config: FitConfig | None = None, fold_ids=None):
  """Trains len(masks) networks; returns (params with a leading fold axis, (folds, steps) losses).

  Args:
    features: (N, 28, 28, 3) float32.
    labels: (N,) int class indices.
    masks: (F, N) bool or 0/1: sample n is in fold f's training set.
    fold_ids: (F,) ints naming each fold's sampling stream (default 0..F-1): a fold trains the same
      whichever other folds are batched with it.
  """
  config = config or FitConfig()
  config.check()
  x = jnp.asarray(features, jnp.float32)
  y = jnp.asarray(labels, jnp.int32)
  w = np.asarray(masks, np.float32)
  if w.ndim != 2 or w.shape[1] != x.shape[0] or x.shape[0] != y.shape[0]:
    raise ValueError(
      f"fit_folds: features {x.shape}, labels {y.shape} and masks {w.shape} do not match"
    )
  empty = np.flatnonzero(w.sum(1) == 0)
  if empty.size:
    raise ValueError(f"fit_folds: folds {empty.tolist()} have no training samples")
  key = jax.random.PRNGKey(config.seed)
  init_key, data_key = jax.random.split(key)
  params0 = STSTNet(num_classes=config.num_classes).init(init_key, x[:1])
  ids = np.arange(w.shape[0]) if fold_ids is None else np.asarray(fold_ids)
  keys = jax.vmap(lambda i: jax.random.fold_in(data_key, i))(jnp.asarray(ids, jnp.uint32))
  full_batch = int(w.sum(1).max()) <= config.batch_size
  params, losses = _train(params0, patches(x), y, jnp.asarray(w), keys, config, full_batch)
  return params, np.asarray(losses)


@functools.partial(jax.jit, static_argnames=("config", "full_batch"))
def _train(params0, p, y, w, keys, config: FitConfig, full_batch: bool):
  """vmap over folds (keys, w) of Adam steps on the patches `p` (computed once for all folds).
  Data are arguments, not constants of the program: one compilation per shape and config."""
  classify = functools.partial(
    STSTNet(num_classes=config.num_classes).apply, method=STSTNet.classify
  )
  opt = optax.adam(config.learning_rate)
  n = p.shape[0]

  def one_fold(fold_key, weights):
    def loss_fn(params, step_key):
      if full_batch:
        ce = _cross_entropy(classify(params, p), y)
        return jnp.sum(ce * weights) / jnp.sum(weights)
      idx = jax.random.choice(
        step_key, n, (config.batch_size,), replace=True, p=weights / jnp.sum(weights)
      )
      return jnp.mean(_cross_entropy(classify(params, p[idx]), y[idx]))

    def step(carry, step_key):
      params, state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, step_key)
      updates, state = opt.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), loss

    carry = (params0, opt.init(params0))
    (params, _), losses = jax.lax.scan(step, carry, jax.random.split(fold_key, config.steps))
    return params, losses

  return jax.vmap(one_fold)(keys, w)


@functools.lru_cache(maxsize=None)
def _predictor(num_classes: int):
  return jax.jit(jax.vmap(STSTNet(num_classes=num_classes).apply, in_axes=(0, None)))


def predict(params, features, num_classes: int = 3) -> np.ndarray:
  """(F, N, classes) logits of every fold's network on every sample."""
  return np.asarray(_predictor(num_classes)(params, jnp.asarray(features, jnp.float32)))
