"""The train state: model variables, three Adam optimisers, the step counter and fault counters.

FOMM trains the keypoint detector, the generator and the discriminator with one Adam each
(lr 2e-4, betas (0.5, 0.999)) and divides every learning rate by 10 at the epoch milestones
(torch MultiStepLR, stepped once per epoch). Here the schedule is a function of the optimiser's
own update count, with the milestones converted to steps (`milestone * steps_per_epoch`).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

MODULES = ("kp_detector", "generator", "discriminator")


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: steps taken (skipped ones included)
  rng: jax.Array  # base PRNG key; the step's key is fold_in(rng, step)
  variables: (
    Any  # {'kp_detector': {'params', 'batch_stats'}, 'generator': ..., 'discriminator': ...}
  )
  opt_state: Any  # {'kp_detector': ..., 'generator': ..., 'discriminator': ...}
  nonfinite_total: jax.Array  # int32: updates skipped because a loss or gradient was not finite
  nonfinite_run: jax.Array  # int32: such skips in a row up to now
  nonfinite_run_max: jax.Array  # int32: longest such run seen (the host checks it at log time)

  def train_state_item(self) -> dict:
    """What goes into the checkpoint's `train_state` item (the variables go into `models`)."""
    return {
      "step": self.step,
      "rng": jax.random.key_data(self.rng) if _is_typed_key(self.rng) else self.rng,
      "opt_state": self.opt_state,
      "nonfinite_total": self.nonfinite_total,
      "nonfinite_run": self.nonfinite_run,
      "nonfinite_run_max": self.nonfinite_run_max,
    }


def _is_typed_key(x) -> bool:
  return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def lr_schedule(lr: float, milestones, steps_per_epoch: int, gamma: float = 0.1) -> optax.Schedule:
  """`lr * gamma ** (number of milestones passed)`, milestones in epochs."""
  if steps_per_epoch < 1:
    raise ValueError(
      f"steps_per_epoch={steps_per_epoch}: an epoch must hold at least one step "
      f"(dataset too small for the batch size?)"
    )
  boundaries = {int(m) * int(steps_per_epoch): gamma for m in milestones}
  return optax.piecewise_constant_schedule(lr, boundaries)


def make_optimizers(config: ml_collections.ConfigDict, steps_per_epoch: int) -> dict:
  """One Adam per module, betas and milestones from `config.optim`."""
  o = config.optim
  return {
    name: optax.adam(
      lr_schedule(o[f"lr_{name}"], o.epoch_milestones, steps_per_epoch, o.gamma),
      b1=o.b1,
      b2=o.b2,
      eps=o.eps,
    )
    for name in MODULES
  }


def create_train_state(variables: Any, optimizers: dict, rng: jax.Array) -> TrainState:
  opt_state = {name: optimizers[name].init(variables[name]["params"]) for name in MODULES}
  zero = jnp.zeros((), jnp.int32)
  return TrainState(
    step=zero,
    rng=rng,
    variables=variables,
    opt_state=opt_state,
    nonfinite_total=zero,
    nonfinite_run=zero,
    nonfinite_run_max=zero,
  )


def init_train_state(models, config: ml_collections.ConfigDict, optimizers: dict) -> TrainState:
  """The state a run of `config` starts from: fresh variables of `config.seed` and the step's base
  key fold_in(PRNGKey(seed), 1). Traceable: jit it with `out_shardings` to create it on a mesh,
  `jax.eval_shape` it for the shapes."""
  from me_fomm import model as model_lib  # Deferred: the model package is heavy to import.

  variables = model_lib.init_variables(models, config.model, config.seed)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  return create_train_state(variables, optimizers, rng)


def replace_from_item(state: TrainState, variables: Any, item: dict) -> TrainState:
  """The state rebuilt from a checkpoint's `models` and `train_state` items."""
  return state.replace(
    step=item["step"],
    rng=item["rng"],
    variables=variables,
    opt_state=item["opt_state"],
    nonfinite_total=item["nonfinite_total"],
    nonfinite_run=item["nonfinite_run"],
    nonfinite_run_max=item["nonfinite_run_max"],
  )
