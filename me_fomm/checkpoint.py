"""The one checkpoint format: converted, trained and released models all read the same way.

A checkpoint is an Orbax `CheckpointManager` directory. Every step holds two items:

* `models`: the variables pytree ``{'kp_detector': {...}, 'generator': {...}, 'discriminator': {...}}``,
  each with its Flax collections (``params``, ``batch_stats``, ...);
* `model_config`: the model config as JSON, so a checkpoint says what it is.

Training stores `train_state` (optimiser states, counters) and `data_iter` (the Grain iterator state)
in the same steps; `load_models` restores only the two items above, so a training checkpoint and a
converted one are read alike.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

MODELS = "models"
MODEL_CONFIG = "model_config"
MODULE_NAMES = ("kp_detector", "generator", "discriminator")


class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable, or does not fit the config asked for."""


def config_to_dict(config: Any) -> dict:
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  # JSON has no tuples; lists compare equal after a round trip only if we normalise here.
  return _jsonable(dict(config))


def _jsonable(x):
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.generic):
    return x.item()
  return x


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(_flatten(v, key + "."))
    else:
      out[key] = v
  return out


def config_differences(found: Any, expected: Any) -> list[str]:
  """Human-readable lines for every config field that differs (`found` is the checkpoint's)."""
  a, b = _flatten(config_to_dict(found)), _flatten(config_to_dict(expected))
  lines = []
  for key in sorted(set(a) | set(b)):
    if key not in a:
      lines.append(f"  {key}: missing in the checkpoint (expected {b[key]!r})")
    elif key not in b:
      lines.append(f"  {key}: {a[key]!r} in the checkpoint, unknown to the expected config")
    elif a[key] != b[key]:
      lines.append(f"  {key}: {a[key]!r} in the checkpoint, {b[key]!r} expected")
  return lines


def tree_differences(found: Any, expected: Any) -> list[str]:
  """Lines naming every leaf missing, unexpected, or of another shape (`expected` may be abstract)."""

  def shapes(tree):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in flat}

  a, b = shapes(found), shapes(expected)
  lines = [f"  missing: {k} (expected shape {b[k]})" for k in sorted(set(b) - set(a))]
  lines += [f"  unexpected: {k} (shape {a[k]})" for k in sorted(set(a) - set(b))]
  lines += [
    f"  wrong shape: {k}: {a[k]} in the checkpoint, {b[k]} expected"
    for k in sorted(set(a) & set(b))
    if a[k] != b[k]
  ]
  return lines


def _manager(directory: str, create: bool, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
    os.path.abspath(directory),
    options=ocp.CheckpointManagerOptions(create=create, **options),
  )


def save_models(directory: str, variables: Mapping, model_config: Any, step: int = 0) -> str:
  """Writes `variables` and `model_config` as step `step` of the checkpoint at `directory`."""
  missing = [m for m in MODULE_NAMES if m not in variables]
  if missing:
    raise CheckpointError(f"variables lack {missing}; expected keys {list(MODULE_NAMES)}")
  variables = jax.tree_util.tree_map(np.asarray, dict(variables))
  with _manager(directory, create=True) as mngr:
    mngr.save(
      step,
      args=ocp.args.Composite(
        **{
          MODELS: ocp.args.StandardSave(variables),
          MODEL_CONFIG: ocp.args.JsonSave(config_to_dict(model_config)),
        }
      ),
      force=True,
    )
    mngr.wait_until_finished()
  return os.path.join(os.path.abspath(directory), str(step))


def latest_step(directory: str) -> int | None:
  if not os.path.isdir(directory):
    return None
  with _manager(directory, create=False) as mngr:
    return mngr.latest_step()


def load_models(directory: str, step: int | None = None, expect: Any = None):
  """Returns `(model_config, variables)` from a checkpoint directory (latest step by default).

  With `expect` (a model config), a checkpoint of another config is refused with a message listing
  every field that differs, before any array is read.
  """
  if not os.path.isdir(directory):
    raise CheckpointError(
      f"no checkpoint directory at {directory!r}: pass the folder written by `me-fomm train` "
      "(its checkpoints/ subfolder) or by `me-fomm convert`"
    )
  with _manager(directory, create=False) as mngr:
    steps = mngr.all_steps()
    if not steps:
      raise CheckpointError(
        f"{directory!r} holds no checkpoint step (expected numbered step folders written by "
        "`me-fomm train` or `me-fomm convert`)"
      )
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise CheckpointError(f"{directory!r} has no step {step}; it has {sorted(steps)}")
    try:
      config_dict = mngr.restore(
        step, args=ocp.args.Composite(**{MODEL_CONFIG: ocp.args.JsonRestore()})
      )[MODEL_CONFIG]
    except Exception as e:  # Orbax raises several types for a folder that is not its own.
      raise CheckpointError(
        f"step {step} of {directory!r} has no readable '{MODEL_CONFIG}' item ({e}); is it a "
        "me_fomm checkpoint?"
      ) from e
    if expect is not None:
      diffs = config_differences(config_dict, expect)
      if diffs:
        raise CheckpointError(
          f"the checkpoint at {directory!r} (step {step}) is of another model config:\n"
          + "\n".join(diffs)
        )
    variables = mngr.restore(step, args=ocp.args.Composite(**{MODELS: ocp.args.StandardRestore()}))[
      MODELS
    ]
  variables = jax.tree_util.tree_map(np.asarray, variables)
  return ml_collections.ConfigDict(config_dict), variables


def check_compatible(model_config: Any, variables: Mapping, expect_config: Any) -> None:
  """Raises CheckpointError listing config fields and variable shapes that do not fit `expect_config`."""
  lines = config_differences(model_config, expect_config)
  from me_fomm import model as model_lib  # Deferred: the model package is heavy to import.

  cfg = ml_collections.ConfigDict(config_to_dict(expect_config))
  models = model_lib.build_models(cfg)
  expected = model_lib.abstract_variables(models, cfg)
  lines += tree_differences(variables, expected)
  if lines:
    raise CheckpointError("the checkpoint does not fit the config:\n" + "\n".join(lines))
