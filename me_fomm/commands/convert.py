"""`me-fomm convert`: an original PyTorch checkpoint (FOMM or the MEGC2021 seed) -> an Orbax checkpoint.

    me-fomm convert --input=vox-cpk.pth.tar --config=fomm --output=checkpoints/vox
    me-fomm convert --input=seed.npz --config=config/my_dataset_train.yaml --variant=seed --output=ckpt/seed

--input is a `.pth.tar` (needs the optional torch extra; read with weights_only=True) or an `.npz` whose keys
are `state/<module>/<name>` or `<module>/<name>`. A checkpoint that does not fit the config fails with a
list of every missing, unexpected or wrongly shaped tensor.
"""

from __future__ import annotations

import logging

from me_fomm.commands import options as O

OPTIONS = (
  O.string(
    "input",
    None,
    "Original checkpoint: .pth.tar (torch extra) or .npz of the state dicts.",
    required=True,
  ),
  O.string(
    "config", "fomm", "Model config: a variant (fomm, seed, tip24) or an original YAML/JSON file."
  ),
  O.string(
    "variant",
    None,
    "With a config file: the variant it describes (default: the file's 'which', else seed for 18 "
    "keypoints, else fomm).",
  ),
  O.string("output", None, "Output checkpoint folder.", required=True),
  O.boolean("overwrite", False, "Replace a non-empty output folder."),
)

log = logging.getLogger("me_fomm.convert")


def run(opts) -> dict:
  """Converts and writes the checkpoint; returns {'input', 'output', 'variant', 'parameters'}."""
  from me_fomm import convert
  from me_fomm.model import config as config_lib
  from me_fomm.model import count_params

  cfg = config_lib.resolve_config(opts.config, variant=opts.variant)
  variables = convert.convert_checkpoint(opts.input, cfg, opts.output, overwrite=opts.overwrite)
  n = count_params(variables)
  return {"output": opts.output, "input": opts.input, "variant": cfg.variant, "parameters": n}


def show(result: dict) -> None:
  print(
    f"converted {result['input']} ({result['variant']} config, {result['parameters']} parameters) -> "
    f"{result['output']}"
  )
