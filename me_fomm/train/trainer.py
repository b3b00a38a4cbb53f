"""`train_and_evaluate(config, workdir)`: the training loop around the compiled step.

The loop does no host synchronisation except at the logging interval (metrics are fetched then),
at checkpoints, and for the progress images. Checkpoints are Orbax `CheckpointManager` steps in
`workdir/checkpoints` holding the items of DESIGN.md (`models`, `model_config`) plus `train_state`
(optimiser states, counters), `data_iter` (each process's data-iterator state) and `train_config`
(the training config as JSON, to refuse a workdir of another config).

Faults: SIGTERM asks for a checkpoint at the next step boundary and a clean return; after a
SIGKILL the next run restores the latest committed checkpoint (params, optimiser moments, PRNG key,
data position), so on CPU it reproduces the uninterrupted run's losses bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import signal
import threading
from typing import Any, Callable

from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from me_fomm import checkpoint as ckpt_lib
from me_fomm.train import losses as losses_lib
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib
from me_fomm.train import step as step_lib
from me_fomm.train import writer as writer_lib

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
  "name",
  "remat",
)


class NonFiniteLossError(RuntimeError):
  """Raised when too many updates in a row were skipped because the loss was not finite."""


# ----------------------------------------------------------------------------------------------
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
      raise ValueError(
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


# ----------------------------------------------------------------------------------------------
# Data.


def make_pair_loader(config, local_batch: int, shard_index: int, shard_count: int):
  """This process's pair iterator and the corpus size (clips) from `me_fomm.data`."""
  from me_fomm.data import pipeline, sources

  data_dir = config.data.data_dir or os.path.expanduser("~/tensorflow_datasets")
  source = sources.load(
    config.data.name, data_dir, config.data.split, image_size=config.data.image_size
  )
  loader = pipeline.pair_loader(
    source,
    batch_size=local_batch,
    seed=config.seed,
    shard_index=shard_index,
    shard_count=shard_count,
    **pipeline.loader_options(config.data),
  )
  return loader, len(source)


class Prefetcher:
  """Draws batches on a thread, each with the iterator state *after* it was drawn.

  With `put` (the trainer passes the host batch -> global sharded batch transfer) the thread also
  starts the host->device copies, so up to `depth` batches wait on the devices already laid out
  on the mesh and the step never waits for a transfer. Without it the queue holds host batches.
  """

  def __init__(self, loader, depth: int, put: Callable | None = None):
    self._loader, self._q = loader, queue.Queue(maxsize=max(1, depth))
    self._put = put
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    try:
      while not self._stop.is_set():
        batch = next(self._loader)
        state = self._loader.get_state()
        if self._put is not None:
          # device_put is asynchronous: this enqueues the copies and returns, the
          # arrays become ready while the current step runs.
          batch = self._put(batch)
        item = (batch, state)
        while not self._stop.is_set():
          try:
            self._q.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
    except BaseException as e:  # Re-raised in the training thread.
      self._q.put(e)

  def next(self):
    item = self._q.get()
    if isinstance(item, StopIteration):
      raise RuntimeError(
        "the pair loader ran out of batches; it should repeat forever "
        "(me_fomm.data.pipeline.pair_loader)"
      ) from item
    if isinstance(item, BaseException):
      raise item
    return item

  def close(self):
    self._stop.set()
    self._thread.join(timeout=5)


# ----------------------------------------------------------------------------------------------
# Config checks.


def validate_config(config) -> None:
  def need(cond, msg):
    if not cond:
      raise ValueError(f"training config: {msg}")

  need(config.batch_size > 0, f"batch_size={config.batch_size} must be positive")
  need(
    config.data.image_size == config.model.image_size,
    f"data.image_size={config.data.image_size} differs from model.image_size="
    f"{config.model.image_size}; set both (e.g. --config.data.image_size="
    f"{config.model.image_size})",
  )
  need(config.loss.vgg in ("vgg16", "vgg19"), f"loss.vgg={config.loss.vgg!r}: use vgg16 or vgg19")
  need(len(config.loss.perceptual) == 5, "loss.perceptual needs 5 weights (one per VGG layer)")
  need(all(s > 0 for s in config.loss.scales), f"loss.scales={config.loss.scales} must be > 0")
  need(
    config.log_every > 0 and config.checkpoint_every > 0,
    "log_every and checkpoint_every must be positive",
  )
  need(config.num_epochs > 0 or config.total_steps > 0, "set num_epochs or total_steps > 0")


def train_config_differences(found: dict, expected: dict) -> list[str]:
  lines = ckpt_lib.config_differences(found, expected)
  return [l for l in lines if not any(l.strip().startswith(f) for f in RUN_CONTROL_FIELDS)]


# ----------------------------------------------------------------------------------------------


def _checkpoint_manager(directory: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
    max_to_keep=config.keep_checkpoints,
    keep_period=config.keep_every or None,
    enable_async_checkpointing=config.async_checkpoints,
    create=True,
  )
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _abstract(tree, sharding):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


class ConfigMismatchError(ValueError):
  """The workdir holds a checkpoint of another config."""


def refuse_other_config(mngr: ocp.CheckpointManager, config) -> int | None:
  """The latest step of `mngr`, after checking it was written with `config` (JSON items only,
  before anything is built). Fields in `RUN_CONTROL_FIELDS` may differ."""
  step = mngr.latest_step()
  if step is None:
    return None
  try:
    meta = mngr.restore(
      step,
      args=ocp.args.Composite(
        **{ckpt_lib.MODEL_CONFIG: ocp.args.JsonRestore(), TRAIN_CONFIG: ocp.args.JsonRestore()}
      ),
    )
  except Exception as e:  # Orbax raises several types for a folder that is not its own.
    raise ConfigMismatchError(
      f"{mngr.directory} step {step} has no readable '{TRAIN_CONFIG}'/'{ckpt_lib.MODEL_CONFIG}' "
      f"items ({e}); it is not a checkpoint of `me-fomm train`. Use a fresh --workdir"
    ) from e
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


def restore(mngr: ocp.CheckpointManager, step: int, state, mesh):
  """The train state of `step`, its arrays placed replicated on `mesh` (whatever mesh wrote
  them), and this process's data-iterator state."""
  repl = mesh_lib.replicated(mesh)
  restored = mngr.restore(
    step,
    args=ocp.args.Composite(
      **{
        ckpt_lib.MODELS: ocp.args.StandardRestore(_abstract(state.variables, repl)),
        TRAIN_STATE: ocp.args.StandardRestore(_abstract(state.train_state_item(), repl)),
        DATA_ITER: DataIterRestore(),
      }
    ),
  )
  state = state_lib.replace_from_item(state, restored[ckpt_lib.MODELS], restored[TRAIN_STATE])
  return state, restored[DATA_ITER]


def _save(mngr, step, state, config, data_state, force=False):
  return mngr.save(
    step,
    args=ocp.args.Composite(
      **{
        ckpt_lib.MODELS: ocp.args.StandardSave(state.variables),
        ckpt_lib.MODEL_CONFIG: ocp.args.JsonSave(ckpt_lib.config_to_dict(config.model)),
        TRAIN_CONFIG: ocp.args.JsonSave(ckpt_lib.config_to_dict(config)),
        TRAIN_STATE: ocp.args.StandardSave(state.train_state_item()),
        DATA_ITER: DataIterSave(data_state),
      }
    ),
    force=force,
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, *, data_fn: Callable | None = None
) -> dict:
  """Trains `config` in `workdir` (resuming from its checkpoints) and returns the final metrics.

  Args:
    config: a training config (experiments/configs/*.py).
    workdir: checkpoints in `workdir/checkpoints`, metrics in `workdir/metrics.jsonl` and
      `workdir/tensorboard`, progress images in `workdir/images`.
    data_fn: `(config, local_batch, shard_index, shard_count) -> (iterator, num_clips)`; the
      iterator yields host batches (DESIGN.md, Data) and has get_state()/set_state().
      Default: `me_fomm.data` on `config.data`.
  Returns:
    {'step', 'loss', per-loss values, 'nonfinite_total', 'preempted'} of the last step.
  """
  from me_fomm import model as model_lib

  validate_config(config)
  is_host0 = jax.process_index() == 0
  mesh = mesh_lib.make_mesh()
  mesh_lib.check_batch_divisible(config.batch_size, mesh)
  local_batch = config.batch_size // jax.process_count()
  repl = mesh_lib.replicated(mesh)

  data_fn = data_fn or make_pair_loader
  loader, num_clips = data_fn(config, local_batch, jax.process_index(), jax.process_count())
  steps_per_epoch = (
    config.steps_per_epoch
    if config.steps_per_epoch > 0
    else num_clips * config.num_repeats // config.batch_size
  )
  if steps_per_epoch < 1:
    raise ValueError(
      f"{num_clips} clips x {config.num_repeats} repeats give no full batch of "
      f"{config.batch_size}; lower batch_size or raise num_repeats"
    )
  total_steps = (
    config.total_steps if config.total_steps > 0 else config.num_epochs * steps_per_epoch
  )

  os.makedirs(workdir, exist_ok=True)
  mngr = _checkpoint_manager(os.path.join(workdir, "checkpoints"), config)
  prefetch = writer = previous_handler = None
  preempt = threading.Event()
  step = start_step = 0
  stopped_early = False
  try:
    start_step = step = refuse_other_config(mngr, config) or 0
    models = model_lib.build_models(config.model, remat=config.get("remat", False))
    init_rng = state_lib.init_rng(config.seed)
    state_rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
    optimizers = state_lib.make_optimizers(config, steps_per_epoch)

    def init_state():
      variables = model_lib.init_variables(models, config.model, init_rng)
      return state_lib.create_train_state(variables, optimizers, state_rng)

    state = jax.jit(init_state, out_shardings=repl)()
    vgg_layers = None
    if any(config.loss.perceptual):
      vgg = losses_lib.load_vgg(config.loss.vgg, config.loss.vgg_weights or None)
      vgg_layers = jax.device_put(vgg["layers"], repl)

    data_state = None
    if start_step:
      state, data_state = restore(mngr, start_step, state, mesh)
      loader.set_state(data_state)
      logging.info("resumed from step %d of %s", start_step, mngr.directory)
    else:
      data_state = loader.get_state()

    train_step = step_lib.jit_train_step(
      step_lib.make_train_step(models, config.model, config, optimizers), mesh
    )
    compiled = None
    predict = step_lib.make_predict_fn(models, config.model) if config.image_every > 0 else None
    writer = writer_lib.MetricsWriter(workdir, enabled=is_host0)
    progress = writer_lib.Progress(total_steps, config.batch_size, start_step)
    logging.info(
      "training %s: %d steps (%d per epoch), global batch %d on %d devices, from step %d",
      config.name,
      total_steps,
      steps_per_epoch,
      config.batch_size,
      jax.device_count(),
      start_step,
    )

    if threading.current_thread() is threading.main_thread():
      previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempt.set())

    # The prefetcher lays each batch out on the mesh (batch axis split over `data`) ahead of
    # the step, so the loop hands the compiled step arrays already on the devices.
    prefetch = Prefetcher(
      loader, config.data.prefetch, put=lambda b: mesh_lib.global_batch_from_local(b, mesh)
    )
    last, last_logged = {}, -1
    while step < total_steps:
      batch, next_data_state = prefetch.next()
      if compiled is None:
        compiled, seconds = step_lib.compile_train_step(
          train_step, state, batch, vgg_layers, config.get("compiler_options")
        )
        logging.info("compiled the train step in %.1f s", seconds)
      state, metrics = compiled(state, batch, vgg_layers)
      step += 1
      data_state = next_data_state

      if step % config.log_every == 0 or step == total_steps:
        last = {k: float(v) for k, v in jax.device_get(metrics).items()}
        counters = jax.device_get(
          {"nonfinite_total": state.nonfinite_total, "nonfinite_run_max": state.nonfinite_run_max}
        )
        last["nonfinite_total"] = int(counters["nonfinite_total"])
        last_logged = step
        text, rate = progress.line(step, last)
        logging.info("%s", text)
        writer.write(step, {**last, "pairs_per_s": rate})
        if counters["nonfinite_run_max"] >= config.max_nonfinite_in_a_row:
          mngr.wait_until_finished()
          raise NonFiniteLossError(
            f"{int(counters['nonfinite_run_max'])} updates in a row had a non-finite "
            f"loss or gradient (limit max_nonfinite_in_a_row="
            f"{config.max_nonfinite_in_a_row}) by step {step}; stopped. The last good "
            f"checkpoint is step {mngr.latest_step()} in {mngr.directory}. Lower the "
            f"learning rate, check the data (NaN/inf frames or landmarks), or try "
            f"float32 (--config.model.dtype=float32)"
          )

      if predict is not None and step % config.image_every == 0:
        _write_progress_image(workdir, step, predict, state.variables, batch, writer, is_host0)

      stop = _agreed_stop(preempt, step % config.log_every == 0)
      if step % config.checkpoint_every == 0 or step == total_steps or stop:
        run = int(jax.device_get(state.nonfinite_run))
        if run == 0:
          _save(mngr, step, state, config, data_state, force=stop)
        else:  # Keep the last checkpoint from before the skipped updates.
          logging.warning("step %d: no checkpoint during %d skipped updates in a row", step, run)
      if stop:
        mngr.wait_until_finished()
        logging.warning("SIGTERM: saved step %d to %s; stopping", step, mngr.directory)
        stopped_early = True
        break
      _debug_faults(config, step, mngr)
  finally:
    if prefetch is not None:
      prefetch.close()
    mngr.wait_until_finished()
    mngr.close()
    if writer is not None:
      writer.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)

  if step > start_step and last_logged != step:
    last = {k: float(v) for k, v in jax.device_get(metrics).items()}
  last.update(
    step=step, preempted=stopped_early, nonfinite_total=int(jax.device_get(state.nonfinite_total))
  )
  return last


def _agreed_stop(preempt: threading.Event, sync_point: bool) -> bool:
  """Whether to save and stop after this step.

  One process: as soon as SIGTERM arrived. Several: saving is a collective, so every process
  must stop at the same step; they agree (any process signalled) at the logging interval, the
  loop's one synchronisation point.
  """
  if jax.process_count() == 1:
    return preempt.is_set()
  if not sync_point:
    return False
  from jax.experimental import multihost_utils

  flags = multihost_utils.process_allgather(np.array([preempt.is_set()], np.int32))
  return bool(np.asarray(flags).any())


def _write_progress_image(workdir, step, predict, variables, batch, writer, is_host0):
  out = {k: _local_rows(v) for k, v in predict(variables, batch).items()}
  if not is_host0:
    return
  # Under multi-host the batch is global; each host fetches only what it addresses, so take
  # host 0's rows from the local shards.
  src = np.asarray(_local_rows(batch["source"]))
  drv = np.asarray(_local_rows(batch["driving"]))
  n = len(src)
  image = writer_lib.progress_image(
    src,
    drv,
    np.asarray(out["prediction"])[:n],
    np.asarray(out["kp_source"])[:n],
    np.asarray(out["kp_driving"])[:n],
  )
  writer_lib.save_png(os.path.join(workdir, "images", f"step_{step:08d}.png"), image)
  writer.write_image(step, "source_driving_prediction", image)


def _local_rows(x: jax.Array):
  if x.is_fully_addressable:
    return jax.device_get(x)
  shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
  return np.concatenate([np.asarray(s.data) for s in shards], axis=0)


def _debug_faults(config, step, mngr):
  """Fault injection for the resume tests: a real SIGKILL / SIGTERM of this process."""
  if step == config.debug.kill_at_step:
    # Let the last periodic save commit, so the test knows which step the rerun resumes from.
    mngr.wait_until_finished()
    os.kill(os.getpid(), signal.SIGKILL)
  if step == config.debug.sigterm_at_step:
    os.kill(os.getpid(), signal.SIGTERM)
