"""Runs the tiny trainer in its own process (for the kill test): argv = workdir, then key=value
config overrides (ints), e.g. `debug.kill_at_step=6`."""

import sys

import tiny_setup

from me_fomm.train import trainer

workdir = sys.argv[1]
config = tiny_setup.trainer_config()
for arg in sys.argv[2:]:
  key, value = arg.split("=")
  node = config
  *parents, leaf = key.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = int(value)
print(trainer.train(config, workdir, data_fn=tiny_setup.tiny_data_fn))
