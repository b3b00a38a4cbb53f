"""`me-fomm convert`: an original PyTorch checkpoint (FOMM or the MEGC2021 seed) -> an Orbax checkpoint.

    me-fomm convert --input=vox-cpk.pth.tar --config=fomm --output=checkpoints/vox
    me-fomm convert --input=seed.npz --config=config/my_dataset_train.yaml --variant=seed --output=ckpt/seed

--input is a `.pth.tar` (needs the optional torch extra; read with weights_only=True) or an `.npz` whose keys
are `state/<module>/<name>` or `<module>/<name>`. A checkpoint that does not fit the config fails with a
list of every missing, unexpected or wrongly shaped tensor.
"""

from __future__ import annotations

import logging

from me_fomm.commands._common import FLAGS, define, run_command

define(
  "string", "input", None, "Original checkpoint: .pth.tar (torch extra) or .npz of the state dicts."
)
define(
  "string",
  "config",
  "fomm",
  "Model config: a variant (fomm, seed, tip24) or an original YAML/JSON file.",
)
define(
  "string",
  "variant",
  None,
  "With a config file: the variant it describes (default: the file's 'which', "
  "else seed for 18 keypoints, else fomm).",
)
define("string", "output", None, "Output checkpoint folder.")
define("bool", "overwrite", False, "Replace a non-empty output folder.")

log = logging.getLogger("me_fomm.convert")


def run(
  input_path: str, config: str, output: str, overwrite: bool = False, variant: str | None = None
) -> dict:
  """Converts and writes the checkpoint; returns the variables."""
  from me_fomm import convert
  from me_fomm import model as model_lib
  from me_fomm.model import config as config_lib

  if not input_path:
    raise ValueError("--input is required (the original .pth.tar or .npz)")
  if not output:
    raise ValueError("--output is required (the folder to write the Orbax checkpoint to)")
  cfg = config_lib.resolve_config(config, variant=variant)
  variables = convert.convert_checkpoint(input_path, cfg, output, overwrite=overwrite)
  n = sum(model_lib.count_params(m) for m in variables.values())
  log.info("converted %s (%s config, %d parameters) -> %s", input_path, cfg.variant, n, output)
  return variables


def main(argv) -> None:
  run_command(
    "convert",
    argv,
    lambda: run(FLAGS.input, FLAGS.config, FLAGS.output, FLAGS.overwrite, FLAGS.variant) and None,
  )
