"""The MEGC2021 winner (Zhang et al., ACM MM 2021): FOMM with 18 facial-prior AU keypoints.

`--config=seed:casme2` picks the corpus: `megc` (the MEGC composite of
CASME II, SAMM and SMIC-HS, the default), `casme2`, `samm`, `smic`.
Training as in the seed's `my_dataset_train.yaml`: batch 9, 100 epochs of 50 repeats, Adam 2e-4
(0.5, 0.999), lr x0.1 at epochs 60 and 90, GAN weight 1, feature matching 10 x 4, perceptual
10 x 5 on scales 1, 1/2, 1/4, 1/8, equivariance value and Jacobian 10.
"""

import ml_collections

from me_fomm_experiments.configs.base import corpus_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = corpus_config("seed", arg, "seed")
  c.update(batch_size=9, num_epochs=100, num_repeats=50)
  c.optim.epoch_milestones = (60, 90)
  c.loss.generator_gan = 1.0
  c.loss.discriminator_gan = 1.0
  c.loss.feature_matching = (10.0, 10.0, 10.0, 10.0)
  c.loss.perceptual = (10.0, 10.0, 10.0, 10.0, 10.0)
  c.loss.scales = (1, 0.5, 0.25, 0.125)
  c.loss.equivariance_value = 10.0
  c.loss.equivariance_jacobian = 10.0
  return c
