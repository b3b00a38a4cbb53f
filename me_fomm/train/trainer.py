"""`train(config, workdir)`: the training loop around the compiled step.

The loop does no host synchronisation except at the logging interval (metrics are fetched then),
at checkpoints, and for the progress images. Checkpoints (`train.checkpointing`) are Orbax
`CheckpointManager` steps in `workdir/checkpoints`; batches come through `train.prefetch.Prefetcher`.

Faults: SIGTERM asks for a checkpoint at the next step boundary and a clean return; after a
SIGKILL the next run restores the latest committed checkpoint (params, optimiser moments, PRNG key,
data position), so on CPU it reproduces the uninterrupted run's losses bit for bit. A damaged latest
checkpoint is moved aside and the step before it resumed (`train.checkpointing.resume`); a second run
on the same workdir is refused (`train.workdir_lock`); a save that fails (a full disk) stops the run
with `CheckpointSaveError`, the previous checkpoint untouched.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
from typing import Callable

import jax
import ml_collections
import numpy as np

from me_fomm.model import perceptual
from me_fomm.train import checkpointing, workdir_lock
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib
from me_fomm.train import step as step_lib
from me_fomm.train import writer as writer_lib
from me_fomm.train.prefetch import Prefetcher


class NonFiniteLossError(RuntimeError):
  """Raised when too many updates in a row were skipped because the loss was not finite."""


class CheckpointSaveError(RuntimeError):
  """A checkpoint could not be written (a full disk, a read-only or vanished folder)."""


def _os_error(e: BaseException) -> OSError | None:
  """The OSError behind `e` (Orbax re-raises a background save's error wrapped), if any."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError):
      return e
    e = e.__cause__ or e.__context__
  return None


@contextlib.contextmanager
def _saving(mngr, step: int):
  """Turns a failed save into one CheckpointSaveError naming the step and the intact one before it."""
  try:
    yield
  except Exception as e:
    os_error = _os_error(e)
    text = str(e)
    if os_error is None and "No space left on device" not in text:
      raise
    reason = (
      "no space left on the device"
      if (os_error is not None and os_error.errno in (errno.ENOSPC, errno.EDQUOT))
      or "No space left on device" in text
      else f"{os_error.strerror or os_error}"
    )
    with contextlib.suppress(Exception):
      mngr.reload()  # what is committed on disk, not the steps this run asked for
    previous = mngr.latest_step()
    kept = (
      f"the previous checkpoint (step {previous}) is intact"
      if previous is not None and previous != step
      else "no earlier checkpoint exists"
    )
    raise CheckpointSaveError(
      f"could not save checkpoint step {step} to {mngr.directory}: {reason}; {kept}. Free space "
      f"(or fix the folder) and run the same command again to resume"
    ) from None


# ----------------------------------------------------------------------------------------------
# Data.


def make_pair_loader(config, local_batch: int, shard_index: int, shard_count: int, source=None):
  """This process's pair iterator and the corpus size (clips): `config.data`'s corpus through
  `me_fomm.data`, or the clip records of `source` (a sequence of clip dicts) when given."""
  from me_fomm.data import pipeline, sources

  if source is None:
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


# ----------------------------------------------------------------------------------------------
# Config checks.


def validate_config(config) -> None:
  from me_fomm.model import config as model_config_lib

  def need(cond, msg):
    if not cond:
      raise ValueError(f"training config: {msg}")

  # The model's own checks too, here: building the models comes after the workdir is made.
  model_config_lib.validate(config.model)

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


def train(
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
  # Process 0 holds the workdir for the run (a second run on it is refused here, before any work).
  lock = workdir_lock.acquire(workdir) if is_host0 else None
  mngr = prefetch = writer = previous_handler = None
  preempt = threading.Event()
  step = start_step = 0
  stopped_early = False
  try:
    mngr = checkpointing.checkpoint_manager(os.path.join(workdir, "checkpoints"), config)
    checkpointing.refuse_other_config(mngr, config)
    models = model_lib.build_models(config.model, remat=config.get("remat", False))
    optimizers = state_lib.make_optimizers(config, steps_per_epoch)
    state = jax.jit(
      lambda: state_lib.init_train_state(models, config, optimizers), out_shardings=repl
    )()
    vgg_layers = None
    if any(config.loss.perceptual):
      vgg = perceptual.load_vgg(config.loss.vgg, config.loss.vgg_weights or None)
      vgg_layers = jax.device_put(vgg["layers"], repl)

    start_step, state, data_state = checkpointing.resume(mngr, state, mesh)
    step = start_step
    if start_step:
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
          with _saving(mngr, step):
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
          with _saving(mngr, step):
            checkpointing.save(mngr, step, state, config, data_state, force=stop)
          if step == config.debug.get("kill_in_save_at_step", -1):
            os.kill(os.getpid(), signal.SIGKILL)  # tests: the save has started, not committed
        else:  # Keep the last checkpoint from before the skipped updates.
          logging.warning("step %d: no checkpoint during %d skipped updates in a row", step, run)
      if stop:
        with _saving(mngr, step):
          mngr.wait_until_finished()
        logging.warning("SIGTERM: saved step %d to %s; stopping", step, mngr.directory)
        stopped_early = True
        break
      _debug_faults(config, step, mngr)
    with _saving(mngr, step):
      mngr.wait_until_finished()
  finally:
    if prefetch is not None:
      prefetch.close()
    if mngr is not None:
      # After an error, an unfinished save's own error must not hide it.
      with contextlib.suppress(Exception):
        mngr.wait_until_finished()
      with contextlib.suppress(Exception):
        mngr.close()
    if writer is not None:
      writer.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)
    if lock is not None:
      workdir_lock.release(lock)

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
