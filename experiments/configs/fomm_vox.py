"""The original First Order Motion Model, vox-256.yaml: 10 learned keypoints, no GAN, batch 40,
100 epochs of 75 repeats, lr x0.1 at epochs 60 and 90.

`--config=fomm_vox:megc` trains it on a micro-expression corpus (default
megc) as the baseline the seed is compared against.
"""

import ml_collections

from me_fomm_experiments.configs.base import corpus_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = corpus_config("fomm_vox", arg, "fomm")
  c.update(batch_size=40, num_epochs=100, num_repeats=75)
  c.optim.epoch_milestones = (60, 90)
  # vox-256.yaml keeps discriminator_gan 1 and feature_matching 10 x 4, but with generator_gan 0
  # the original (and this port) runs neither the GAN losses nor the discriminator step.
  c.loss.generator_gan = 0.0
  return c
