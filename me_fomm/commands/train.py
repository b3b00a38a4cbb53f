"""`me-fomm train` (and `python -m experiments.train`): train a config in a workdir.

    me-fomm train --config=experiments/configs/seed.py:casme2 --workdir=runs/seed_casme2
    me-fomm train --config=experiments/configs/demo.py --workdir=runs/demo --config.batch_size=16

Re-running the same command resumes from the workdir's latest checkpoint. Multi-host: start the
same command on every host with --distributed (TPU pods and SLURM find their peers; elsewhere add
--coordinator_address, --num_processes and --process_id).
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS

config_flags.DEFINE_config_file(
  "config",
  None,
  "Training config file, optionally with an argument: "
  "experiments/configs/seed.py:casme2. Override fields with --config.batch_size=16.",
  lock_config=True,
)
flags.DEFINE_string(
  "workdir",
  None,
  "Checkpoints, metrics and images go here; an existing checkpoint of the same config is resumed.",
)
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize (multi-host runs).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
flags.DEFINE_enum(
  "cpu_collectives",
  None,
  ["gloo", "mpi"],
  "CPU cross-process collectives (CPU-only multi-process runs need 'gloo').",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag")
  # Before anything touches a device.
  from me_fomm.train import mesh

  if FLAGS.distributed:
    mesh.maybe_initialize_distributed(
      FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id, FLAGS.cpu_collectives
    )
  elif FLAGS.coordinator_address or FLAGS.num_processes or FLAGS.process_id is not None:
    raise app.UsageError("--coordinator_address/--num_processes/--process_id need --distributed")

  import jax

  from me_fomm.train import trainer

  logging.getLogger().setLevel(logging.INFO)
  logging.info(
    "JAX %s, process %d/%d, devices: %s",
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    jax.devices(),
  )
  try:
    result = trainer.train(FLAGS.config, FLAGS.workdir)
  except (ValueError, FileNotFoundError, trainer.NonFiniteLossError) as e:
    # Config, data and divergence problems: the message says what and what to do; the
    # traceback stays in the log for a bug report.
    logging.debug("training stopped", exc_info=True)
    print(f"me-fomm train: {e}", file=sys.stderr)
    sys.exit(1)
  logging.info("done: %s", result)


if __name__ == "__main__":
  app.run(main)
