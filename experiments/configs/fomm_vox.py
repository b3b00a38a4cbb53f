"""The original First Order Motion Model, vox-256.yaml: 10 learned keypoints, no GAN, batch 40,
100 epochs of 75 repeats, lr x0.1 at epochs 60 and 90.

`--config=experiments/configs/fomm_vox.py:megc` trains it on a micro-expression corpus (default
megc) as the baseline the seed is compared against.
"""

import ml_collections

from me_fomm.model.config import model_config
from me_fomm_experiments.configs.base import base_config
from me_fomm_experiments.configs.seed import CORPORA


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  corpus = arg or "megc"
  if corpus not in CORPORA:
    raise ValueError(f"fomm_vox.py:{corpus}: unknown corpus; choose one of {sorted(CORPORA)}")
  c = base_config()
  c.name = f"fomm_vox_{corpus}"
  c.model = model_config("fomm")
  c.data.name = CORPORA[corpus]
  c.data.image_size = c.model.image_size
  c.batch_size = 40
  c.num_epochs = 100
  c.num_repeats = 75
  c.optim.epoch_milestones = (60, 90)
  # vox-256.yaml keeps discriminator_gan 1 and feature_matching 10 x 4, but with generator_gan 0
  # the original (and this port) runs neither the GAN losses nor the discriminator step.
  c.loss.generator_gan = 0.0
  return c
