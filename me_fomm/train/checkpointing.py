"""The training run's checkpoints: Orbax `CheckpointManager` steps in `workdir/checkpoints`.

Each step holds the items of DESIGN.md (`models`, `model_config`, read by `me_fomm.checkpoint.load_models`)
plus `train_state` (optimiser states, counters), `data_iter` (each process's data-iterator state) and
`train_config` (the training config as JSON, to refuse a workdir of another config), and
`checksums` (`me_fomm.checkpoint.read_step` checks every restore against it).

Resuming takes the newest step that restores completely, data-iterator state included; a damaged step
is moved aside into `workdir/checkpoints_damaged/` (kept, not deleted) with a warning. A step that a
kill interrupted while it was saved never got its commit rename: Orbax lists only committed steps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from typing import Any

from etils import epath
import jax
import orbax.checkpoint as ocp

from me_fomm import checkpoint as ckpt_lib
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib

TRAIN_STATE = "train_state"
DATA_ITER = "data_iter"
TRAIN_CONFIG = "train_config"

# Fields that may change between a run and its resumption: they steer the run, not what it learns.
RUN_CONTROL_FIELDS = (
  "total_steps",
  "num_epochs",
  "log_every",
  "image_every",
  "checkpoint_every",
  "keep_checkpoints",
  "keep_every",
  "async_checkpoints",
  "max_nonfinite_in_a_row",
  "debug.",
  "compiler_options",
  "data.data_dir",
  "data.prefetch",
  # Loader speed options that do not change the batches (tests/data pins that).
  "data.read_threads",
  "data.cache_clips",
  "data.worker_buffer_size",
  # What a command does with the trained model (the demo's evaluation), not training.
  "evaluate.",
  "personalize.",
  "name",
  "remat",
)


class ConfigMismatchError(ValueError):
  """The workdir holds a checkpoint of another config."""


class ProcessCountError(ValueError):
  """A step saved by another number of processes: not damage, so no fallback to an older step."""


# The data iterator's state as an Orbax item: one JSON file per process, like Grain's own handler,
# but taking the state itself (captured when the batch was drawn, not when the save happens, since
# the prefetcher runs ahead of the step).


class DataIterHandler(ocp.CheckpointHandler):
  def save(self, directory: epath.Path, args: "DataIterSave"):
    state = args.state
    if isinstance(state, bytes):
      payload = {"encoding": "bytes", "state": state.decode("latin-1")}
    else:
      payload = {"encoding": "json", "state": state}
    name = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    (directory / name).write_text(json.dumps(payload))

  def restore(self, directory: epath.Path, args: "DataIterRestore" = None):
    name = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    path = directory / name
    if not path.exists():
      found = sorted(p.name for p in directory.iterdir())
      raise ProcessCountError(
        f"{directory} has no data-iterator state for this process ({name}); it holds {found}. "
        f"A run must resume with the same number of processes it was saved with, since each "
        f"process reads its own data shard"
      )
    payload = json.loads(path.read_text())
    state = payload["state"]
    return state.encode("latin-1") if payload["encoding"] == "bytes" else state

  def metadata(self, directory):
    return None

  def structure(self, directory):
    return None

  def finalize(self, directory):
    pass

  def close(self):
    pass

  @classmethod
  def typestr(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


@ocp.args.register_with_handler(DataIterHandler, for_save=True)
@dataclasses.dataclass
class DataIterSave(ocp.args.CheckpointArgs):
  state: Any


@ocp.args.register_with_handler(DataIterHandler, for_restore=True)
@dataclasses.dataclass
class DataIterRestore(ocp.args.CheckpointArgs):
  pass


def train_config_differences(found: dict, expected: dict) -> list[str]:
  lines = ckpt_lib.config_differences(found, expected)
  return [l for l in lines if not any(l.strip().startswith(f) for f in RUN_CONTROL_FIELDS)]


def checkpoint_manager(directory: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
    max_to_keep=config.keep_checkpoints,
    keep_period=config.keep_every or None,
    enable_async_checkpointing=config.async_checkpoints,
    create=True,
    # A save a kill cut short leaves an uncommitted `<step>.orbax-checkpoint-tmp-*` folder: clear it.
    cleanup_tmp_directories=True,
  )
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _abstract(tree, sharding):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def damaged_dir(mngr: ocp.CheckpointManager) -> str:
  """Where damaged steps go: `checkpoints_damaged/` beside the checkpoint folder."""
  return os.path.join(os.path.dirname(str(mngr.directory)), "checkpoints_damaged")


def move_aside(mngr: ocp.CheckpointManager, error: ckpt_lib.DamagedCheckpointError) -> str:
  """Moves the damaged step out of the checkpoint folder (process 0; the others wait for it)."""
  target = os.path.join(damaged_dir(mngr), str(error.step))
  if jax.process_index() == 0:
    os.makedirs(damaged_dir(mngr), exist_ok=True)
    n = 1
    while os.path.exists(target):
      target = os.path.join(damaged_dir(mngr), f"{error.step}.{n}")
      n += 1
    shutil.move(os.path.join(str(mngr.directory), str(error.step)), target)
  _sync("me_fomm_move_aside")
  mngr.reload()
  logging.warning(
    "checkpoint step %d is damaged (%s); moved it to %s, trying the step before it",
    error.step,
    error.damage,
    target,
  )
  return target


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def _all_ok(ok: bool) -> bool:
  """Whether every process read its part of a step (each reads its own data-iterator state)."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils
  import numpy as np

  return bool(np.asarray(multihost_utils.process_allgather(np.array([ok], np.int32))).all())


def _read_checked(mngr, step, items):
  """`read_step`, agreed by every process: a step damaged for one is damaged for all."""
  error = None
  try:
    restored = ckpt_lib.read_step(mngr, step, items, passthrough=(ProcessCountError,))
  except ckpt_lib.DamagedCheckpointError as e:
    error, restored = e, None
  if not _all_ok(error is None):
    raise error or ckpt_lib.DamagedCheckpointError(
      f"step {step} of {mngr.directory} is damaged on another process",
      step,
      "damaged on another process",
    )
  return restored


def refuse_other_config(mngr: ocp.CheckpointManager, config) -> int | None:
  """The newest step of `mngr` whose JSON items read, after checking it was written with `config`
  (before anything is built). Fields in `RUN_CONTROL_FIELDS` may differ. Steps whose JSON is
  damaged are moved aside."""
  while (step := mngr.latest_step()) is not None:
    step_dir = os.path.join(str(mngr.directory), str(step))
    if not all(
      os.path.isdir(os.path.join(step_dir, item)) for item in (ckpt_lib.MODEL_CONFIG, TRAIN_CONFIG)
    ):
      raise ConfigMismatchError(
        f"{mngr.directory} step {step} has no '{TRAIN_CONFIG}'/'{ckpt_lib.MODEL_CONFIG}' items; "
        f"it is not a checkpoint of `me-fomm train`. Use a fresh --workdir"
      )
    try:
      meta = _read_checked(
        mngr,
        step,
        {ckpt_lib.MODEL_CONFIG: ocp.args.JsonRestore(), TRAIN_CONFIG: ocp.args.JsonRestore()},
      )
    except ckpt_lib.DamagedCheckpointError as e:
      move_aside(mngr, e)
      continue
    break
  else:
    return None
  lines = ckpt_lib.config_differences(meta[ckpt_lib.MODEL_CONFIG], config.model)
  lines += [
    l
    for l in train_config_differences(meta[TRAIN_CONFIG], ckpt_lib.config_to_dict(config))
    if not l.strip().startswith("model.")
  ]
  if lines:
    raise ConfigMismatchError(
      f"{mngr.directory} holds a checkpoint (step {step}) of another config; use a fresh "
      f"--workdir or the config it was trained with. Differences (checkpoint vs now):\n"
      + "\n".join(lines)
    )
  return step


def resume(mngr: ocp.CheckpointManager, state, mesh):
  """(step, state, data-iterator state) of the newest step that restores completely, moving damaged
  ones aside; (0, state, None) when none is left. Reads that step once and computes the CRC-32 of its
  arrays (about a second per GB on one core)."""
  while (step := mngr.latest_step()) is not None:
    try:
      restored_state, data_state = restore(mngr, step, state, mesh)
    except ckpt_lib.DamagedCheckpointError as e:
      move_aside(mngr, e)
      continue
    return step, restored_state, data_state
  return 0, state, None


def restore(mngr: ocp.CheckpointManager, step: int, state, mesh):
  """The train state of `step`, its arrays placed replicated on `mesh` (whatever mesh wrote
  them), and this process's data-iterator state."""
  repl = mesh_lib.replicated(mesh)
  restored = _read_checked(
    mngr,
    step,
    {
      ckpt_lib.MODELS: ocp.args.StandardRestore(_abstract(state.variables, repl)),
      TRAIN_STATE: ocp.args.StandardRestore(_abstract(state.train_state_item(), repl)),
      DATA_ITER: DataIterRestore(),
    },
  )
  state = state_lib.replace_from_item(state, restored[ckpt_lib.MODELS], restored[TRAIN_STATE])
  return state, restored[DATA_ITER]


def save(mngr, step, state, config, data_state, force=False):
  """Writes `step`: the models and model config (DESIGN.md's items), the training config, the train
  state and this process's data-iterator state; asynchronous when the manager is (the checksums are
  computed before it returns, from the arrays being saved)."""
  train_state = state.train_state_item()
  return mngr.save(
    step,
    args=ocp.args.Composite(
      **{
        ckpt_lib.MODELS: ocp.args.StandardSave(state.variables),
        ckpt_lib.MODEL_CONFIG: ocp.args.JsonSave(ckpt_lib.config_to_dict(config.model)),
        TRAIN_CONFIG: ocp.args.JsonSave(ckpt_lib.config_to_dict(config)),
        TRAIN_STATE: ocp.args.StandardSave(train_state),
        DATA_ITER: DataIterSave(data_state),
        ckpt_lib.CHECKSUMS: ckpt_lib.checksum_save(
          {ckpt_lib.MODELS: state.variables, TRAIN_STATE: train_state}
        ),
      }
    ),
    force=force,
  )
