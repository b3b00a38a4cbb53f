"""The MEGC2021 winner (Zhang et al., ACM MM 2021): FOMM with 18 facial-prior AU keypoints.

`--config=experiments/configs/seed.py:casme2` picks the corpus: `megc` (the MEGC composite of
CASME II, SAMM and SMIC-HS, the default), `casme2`, `samm`, `smic`.
Training as in the seed's `my_dataset_train.yaml`: batch 9, 100 epochs of 50 repeats, Adam 2e-4
(0.5, 0.999), lr x0.1 at epochs 60 and 90, GAN weight 1, feature matching 10 x 4, perceptual
10 x 5 on scales 1, 1/2, 1/4, 1/8, equivariance value and Jacobian 10.
"""

import ml_collections

from me_fomm.model.config import model_config
from me_fomm_experiments.configs.base import base_config

CORPORA = {"megc": "megc", "casme2": "casme2", "samm": "samm", "smic": "smic/hs"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  corpus = arg or "megc"
  if corpus not in CORPORA:
    raise ValueError(f"seed.py:{corpus}: unknown corpus; choose one of {sorted(CORPORA)}")
  c = base_config()
  c.name = f"seed_{corpus}"
  c.model = model_config("seed")
  c.data.name = CORPORA[corpus]
  c.data.image_size = c.model.image_size
  c.batch_size = 9
  c.num_epochs = 100
  c.num_repeats = 50
  c.optim.epoch_milestones = (60, 90)
  c.loss.generator_gan = 1.0
  c.loss.discriminator_gan = 1.0
  c.loss.feature_matching = (10.0, 10.0, 10.0, 10.0)
  c.loss.perceptual = (10.0, 10.0, 10.0, 10.0, 10.0)
  c.loss.scales = (1, 0.5, 0.25, 0.125)
  c.loss.equivariance_value = 10.0
  c.loss.equivariance_jacobian = 10.0
  return c
