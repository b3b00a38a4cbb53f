"""`me-fomm train` (and `python -m experiments.train`): train a config in a workdir.

    me-fomm train --config=seed:casme2 --workdir=runs/seed_casme2
    me-fomm train --config=demo --workdir=runs/demo --config.batch_size=16
    me-fomm train --config=path/to/my_config.py:arg --workdir=...

`--config` names a built-in config (demo, seed, tip24, fomm_vox: `experiments/configs/`, usable from any
folder) or a config file, with `get_config`'s argument after a colon. Re-running the same command resumes
from the workdir's latest checkpoint. Multi-host: start the same command on every host with --distributed
(TPU pods and SLURM find their peers; elsewhere add --coordinator_address, --num_processes and
--process_id).
"""

from __future__ import annotations

import logging

from me_fomm.commands import options as O

OPTIONS = (
  O.TRAINING_CONFIG,
  O.string(
    "workdir",
    None,
    "Checkpoints, metrics and images go here; an existing checkpoint of the same config is resumed.",
    required=True,
  ),
  O.boolean("distributed", False, "Call jax.distributed.initialize (multi-host runs)."),
  O.string("coordinator_address", None, "host:port of process 0 (with --distributed)."),
  O.integer("num_processes", None, "Number of processes (with --distributed)."),
  O.integer("process_id", None, "This process's index (with --distributed)."),
  O.enum(
    "cpu_collectives",
    None,
    ["gloo", "mpi"],
    "CPU cross-process collectives (CPU-only multi-process runs need 'gloo').",
  ),
)


def run(opts) -> dict:
  """Trains `opts.config` in `opts.workdir`; returns the last step's metrics."""
  # Before anything touches a device.
  from me_fomm.train import mesh

  if opts.distributed:
    mesh.maybe_initialize_distributed(
      opts.coordinator_address, opts.num_processes, opts.process_id, opts.cpu_collectives
    )
  elif opts.coordinator_address or opts.num_processes or opts.process_id is not None:
    raise ValueError("--coordinator_address/--num_processes/--process_id need --distributed")

  import jax

  from me_fomm.train import trainer

  logging.info(
    "JAX %s, process %d/%d, devices: %s",
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    jax.devices(),
  )
  try:
    return trainer.train(opts.config, opts.workdir)
  except trainer.NonFiniteLossError as e:
    raise O.CommandError(str(e)) from None


def show(result: dict) -> None:
  logging.info("done: %s", result)
