"""The one device mesh of a training run, its shardings, and multi-host start-up.

Data parallelism only: every device of every host sits on one `data` axis, the global batch is split
along it and every parameter is replicated. Under `jax.jit` with these shardings XLA inserts the
gradient all-reduce and the BatchNorm batch-statistics all-reduce itself, so the step's code is the
single-device code (the GSPMD model, Xu et al. 2021, arXiv:2105.04663).
"""

from __future__ import annotations

import logging
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = "data"


def maybe_initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  cpu_collectives: str | None = None,
) -> None:
  """Connects this process to the others of a multi-host run (`jax.distributed.initialize`).

  Must run before anything touches a device. With no arguments on a TPU pod or a SLURM/Open MPI
  cluster JAX discovers the peers itself; on plain CPU hosts pass all three. `cpu_collectives`
  ('gloo' or 'mpi') picks the CPU cross-process collectives, which a CPU-only multi-process run
  needs (the default CPU client has none).
  """
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  kwargs = {}
  if coordinator_address:
    kwargs["coordinator_address"] = coordinator_address
  if num_processes is not None:
    kwargs["num_processes"] = int(num_processes)
  if process_id is not None:
    kwargs["process_id"] = int(process_id)
  jax.distributed.initialize(**kwargs)
  logging.info(
    "jax.distributed: process %d of %d, %d local / %d global devices",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )


def make_mesh(devices: Any = None) -> Mesh:
  """A 1-D mesh named `data` over `devices` (all devices of all hosts by default).

  Built with `jax.sharding.Mesh` rather than `jax.make_mesh`: newer JAX makes `make_mesh` axes
  Explicit by default, which changes how plain `jit` propagates shardings; a `Mesh` built
  directly has Auto axes on every JAX version this project supports.
  """
  if devices is None:
    devices = jax.devices()
  devices = np.asarray(devices).reshape(-1)
  return Mesh(devices, (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, everything else whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_divisible(global_batch: int, mesh: Mesh) -> None:
  n = mesh.shape[DATA_AXIS]
  if global_batch % n:
    raise ValueError(
      f"batch_size={global_batch} does not split over the {n} devices of the mesh; "
      f"set --config.batch_size to a multiple of {n} (e.g. {max(n, (global_batch // n) * n)})"
    )
  if global_batch % jax.process_count():
    raise ValueError(
      f"batch_size={global_batch} does not split over {jax.process_count()} processes; "
      f"set --config.batch_size to a multiple of {jax.process_count()}"
    )


def global_batch_from_local(local: dict, mesh: Mesh) -> dict:
  """Assembles this host's part of the batch into global arrays sharded on `data`.

  Each host holds rows [i * B/P, (i+1) * B/P) of the global batch (its data shard); with a
  single process this is a plain `device_put` of the whole batch.
  """
  sharding = batch_sharded(mesh)
  if jax.process_count() == 1:
    return jax.device_put(local, sharding)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local
  )
