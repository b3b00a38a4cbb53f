"""The one checkpoint format: converted, trained and released models all read the same way.

A checkpoint is an Orbax `CheckpointManager` directory. Every step holds two items:

* `models`: the variables pytree ``{'kp_detector': {...}, 'generator': {...}, 'discriminator': {...}}``,
  each with its Flax collections (``params``, ``batch_stats``, ...);
* `model_config`: the model config as JSON, so a checkpoint says what it is.

Training stores `train_state` (optimiser states, counters) and `data_iter` (the Grain iterator state)
in the same steps; `load_models` restores only the two items above, so a training checkpoint and a
converted one are read alike.

Every step also holds `checksums` (JSON: the CRC-32 of each array of `models` and `train_state`), since
TensorStore reads flipped bytes in an uncompressed chunk without complaint. `read_step` restores items
and checks them against it; whatever is wrong (a TensorStore/JSON error, a checksum that differs) becomes
one `DamagedCheckpointError` naming the step and what is damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Mapping
import zlib

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

MODELS = "models"
MODEL_CONFIG = "model_config"
MODULE_NAMES = ("kp_detector", "generator", "discriminator")
CHECKSUMS = "checksums"


class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable, or does not fit the config asked for."""


class DamagedCheckpointError(CheckpointError):
  """A step whose files do not read back as written (`step`; `damage` says what)."""

  def __init__(self, message: str, step: int, damage: str):
    super().__init__(message)
    self.step, self.damage = step, damage


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


def _host_bytes(x) -> np.ndarray:
  """The bytes of one array as uint8; a replicated array that spans hosts is read from this host's copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_data(0)
  return np.ascontiguousarray(np.asarray(x)).reshape(-1).view(np.uint8)


def checksums(tree) -> dict[str, int]:
  """CRC-32 of every array of `tree`, by its key path (what the `checksums` item stores)."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): zlib.crc32(_host_bytes(x)) for path, x in flat}


def checksum_save(items: Mapping[str, Any]):
  """The `checksums` item's save argument for the array items `items` (name -> pytree)."""
  return ocp.args.JsonSave({name: checksums(tree) for name, tree in items.items()})


def _first_line(e: Exception) -> str:
  text = " ".join(str(e).split("Traceback")[0].split())
  return (text[:300] + "...") if len(text) > 300 else text or type(e).__name__


def read_step(mngr: ocp.CheckpointManager, step: int, items: Mapping[str, Any], passthrough=()):
  """`mngr.restore(step)` of `items` (name -> restore args), checked against the step's checksums.

  Any failure to read, or an array whose CRC-32 differs from the saved one, raises one
  DamagedCheckpointError naming the step, the damaged item or array, and the file when the error names
  one. Exceptions of the types in `passthrough` are not damage (e.g. a run resumed with another process
  count) and propagate as they are.
  """
  where = f"step {step} of {mngr.directory}"
  damage = _unreadable_metadata(mngr, step, items)
  if damage:
    raise DamagedCheckpointError(f"{where} is damaged: {damage}", step, damage)
  try:
    with _no_closed_loop_noise():
      restored = mngr.restore(step, args=ocp.args.Composite(**items))
  except passthrough:
    raise
  except Exception as e:  # TensorStore, JSON and Orbax each raise their own types.
    damage = _which_items(mngr, step, items, passthrough) or _first_line(e)
    raise DamagedCheckpointError(f"{where} is damaged: {damage}", step, damage) from None
  saved = _saved_checksums(mngr, step)
  bad = []
  for name, tree in saved.items():
    if name in items and name in restored:
      now = checksums(restored[name])
      bad += [f"{name}{k}" for k, crc in tree.items() if now.get(k) != crc]
  if bad:
    damage = f"array {bad[0]}" + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
    damage += (
      " differ from their saved CRC-32" if len(bad) > 1 else " differs from its saved CRC-32"
    )
    raise DamagedCheckpointError(f"{where} is damaged: {damage}", step, damage)
  return restored


def _unreadable_metadata(mngr, step, items) -> str:
  """The items' `_sharding` files: a restore given shardings never reads them, but a reader without
  them (`generate` on that step) does, so a damaged one is damage to the step."""
  for name in items:
    path = os.path.join(str(mngr.directory), str(step), name, "_sharding")
    if os.path.exists(path):
      try:
        with open(path) as f:
          json.load(f)
      except (OSError, ValueError) as e:
        return f"item {name!r} does not read (its _sharding file: {_first_line(e)})"
  return ""


@contextlib.contextmanager
def _no_closed_loop_noise():
  """When one TensorStore read fails, Orbax closes its event loop while other reads still finish;
  their callbacks then raise "Event loop is closed" as unraisable exceptions, printed as tracebacks
  after the real error. Those say nothing new: drop them, pass anything else on."""
  previous = sys.unraisablehook

  def hook(unraisable):
    e = unraisable.exc_value
    if not (isinstance(e, RuntimeError) and str(e) == "Event loop is closed"):
      previous(unraisable)

  sys.unraisablehook = hook
  try:
    yield
  finally:
    sys.unraisablehook = previous


def _which_items(mngr, step, items, passthrough) -> str:
  """Restores `items` one by one (only after a failure) to say which of them is damaged, and how."""
  if len(items) < 2:
    (name,) = items
    e = _restore_error(mngr, step, items, passthrough)
    return f"item {name!r} does not read ({_first_line(e)})" if e else ""
  parts = []
  for name, args in items.items():
    e = _restore_error(mngr, step, {name: args}, passthrough)
    if e is not None:
      parts.append(f"item {name!r} does not read ({_first_line(e)})")
  return "; ".join(parts)


def _restore_error(mngr, step, items, passthrough):
  try:
    with _no_closed_loop_noise():
      mngr.restore(step, args=ocp.args.Composite(**items))
  except passthrough:
    raise
  except Exception as e:
    return e
  return None


def _saved_checksums(mngr, step) -> dict:
  """The step's `checksums` item ({} for a step written before there were checksums)."""
  if not os.path.isdir(os.path.join(str(mngr.directory), str(step), CHECKSUMS)):
    return {}
  try:
    return mngr.restore(step, args=ocp.args.Composite(**{CHECKSUMS: ocp.args.JsonRestore()}))[
      CHECKSUMS
    ]
  except Exception as e:
    damage = f"item {CHECKSUMS!r} does not read ({_first_line(e)})"
    raise DamagedCheckpointError(
      f"step {step} of {mngr.directory} is damaged: {damage}", step, damage
    ) from None


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
          CHECKSUMS: checksum_save({MODELS: variables}),
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
      config_dict, variables = _read_models(mngr, step, expect, directory)
    except DamagedCheckpointError as e:
      good = _previous_good(mngr, step, expect, directory)
      hint = (
        f"pass --step={good} (the newest step before it that reads completely)"
        if good is not None
        else "no earlier step reads completely; retrain or convert again"
      )
      raise DamagedCheckpointError(f"{e}; {hint}", e.step, e.damage) from None
  variables = jax.tree_util.tree_map(np.asarray, variables)
  return ml_collections.ConfigDict(config_dict), variables


def _read_models(mngr, step, expect, directory):
  if not os.path.isdir(os.path.join(str(mngr.directory), str(step), MODEL_CONFIG)):
    raise CheckpointError(
      f"step {step} of {directory!r} has no '{MODEL_CONFIG}' item; is it a me_fomm checkpoint?"
    )
  config_dict = read_step(mngr, step, {MODEL_CONFIG: ocp.args.JsonRestore()})[MODEL_CONFIG]
  if not isinstance(config_dict, Mapping):
    raise CheckpointError(
      f"step {step} of {directory!r} has no readable '{MODEL_CONFIG}' item; is it a me_fomm "
      "checkpoint?"
    )
  if expect is not None:
    diffs = config_differences(config_dict, expect)
    if diffs:
      raise CheckpointError(
        f"the checkpoint at {directory!r} (step {step}) is of another model config:\n"
        + "\n".join(diffs)
      )
  variables = read_step(mngr, step, {MODELS: ocp.args.StandardRestore()})[MODELS]
  return config_dict, variables


def _previous_good(mngr, step, expect, directory) -> int | None:
  """The newest step before `step` whose models read completely (read only after a failure)."""
  for earlier in sorted((s for s in mngr.all_steps() if s < step), reverse=True):
    try:
      _read_models(mngr, earlier, expect, directory)
    except CheckpointError:
      continue
    return earlier
  return None


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
