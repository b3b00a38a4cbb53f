"""One process of the two-process test: argv = coordinator, num_processes, process_id, out.json.

Each process holds its rows of the global batch (its data shard), builds the global arrays with
`make_array_from_process_local_data`, and runs one step of the tiny seed model over the mesh of
every device of both processes (gloo CPU collectives).
"""

# jax.distributed must start before anything else touches JAX, so the other imports follow it.
# ruff: noqa: E402

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
coordinator, n, pid, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
jax.distributed.initialize(coordinator_address=coordinator, num_processes=n, process_id=pid)

import numpy as np
import tiny_setup

from me_fomm import model as model_lib
from me_fomm.model import perceptual
from me_fomm.train import mesh as mesh_lib
from me_fomm.train import state as state_lib
from me_fomm.train import step as step_lib

config = tiny_setup.tiny_config("seed", gan=True)
mesh = mesh_lib.make_mesh()
models = model_lib.build_models(config.model)
optimizers = state_lib.make_optimizers(config, config.steps_per_epoch)
state = jax.jit(
  lambda: state_lib.init_train_state(models, config, optimizers),
  out_shardings=mesh_lib.replicated(mesh),
)()
vgg = jax.device_put(perceptual.load_vgg("vgg16")["layers"], mesh_lib.replicated(mesh))
batch = tiny_setup.tiny_batch(4)
per = 4 // n
local = {k: v[pid * per : (pid + 1) * per] for k, v in batch.items()}
global_batch = mesh_lib.global_batch_from_local(local, mesh)
jitted = step_lib.jit_train_step(
  step_lib.make_train_step(models, config.model, config, optimizers), mesh
)
step, _ = step_lib.compile_train_step(jitted, state, global_batch, vgg, config.compiler_options)
state, metrics = step(state, global_batch, vgg)
metrics = {k: float(np.asarray(v)) for k, v in metrics.items()}
with open(out, "w") as f:
  json.dump(
    {"metrics": metrics, "devices": jax.device_count(), "processes": jax.process_count()}, f
  )
jax.distributed.shutdown()
