"""A few minutes on two CPU cores: the seed's model at small widths, 64 px, on the synthetic corpus.

`--config=experiments/configs/demo.py` (seed: prior keypoints from the synthetic faces' landmarks)
or `demo.py:fomm` (10 learned keypoints). To keep a step cheap the GAN is off, the perceptual
pyramid has two scales and reads VGG16 up to relu2_2 (the deeper layers are ~80% of the step's
FLOPs at 64 px); everything else (losses, optimiser, checkpoints) is the full machinery.

Three options of ours (off in the published configs, see DESIGN.md) make a few minutes of training on one
face transfer sub-pixel motion to an unseen face: `generator.pixel_skip` (visible pixels are the target
photo warped, not repainted), `generator.dense_motion.location_heatmaps` (the masks can find the keypoints
of any face) and `loss.landmark_flow` (the flow must carry dlib's 68 landmarks from driving to source).
Measured on the held-out identity (6 clips, 400 steps): with pixel_skip + landmark_flow 10 alone the flow
carried -1 to 9% of the true landmark motion; adding location_heatmaps, flips and landmark_flow 30, 29-51%.
"""

import ml_collections

from me_fomm.model.config import model_config

try:
  from experiments.configs.base import base_config
except ImportError:
  from me_fomm_experiments.configs.base import base_config

SIZE = 64


def demo_model(variant: str = "seed") -> ml_collections.ConfigDict:
  return model_config(
    variant,
    image_size=SIZE,
    kp_detector=dict(block_expansion=8, max_features=64, num_blocks=3, scale_factor=0.5),
    generator=dict(
      block_expansion=16,
      max_features=64,
      num_down_blocks=2,
      num_bottleneck_blocks=1,
      dense_motion=dict(
        block_expansion=16, max_features=64, num_blocks=3, scale_factor=0.5, location_heatmaps=True
      ),
      pixel_skip=True,
    ),
    discriminator=dict(scales=[1], block_expansion=8, max_features=64, num_blocks=4),
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "seed"
  if variant not in ("seed", "fomm", "tip24"):
    raise ValueError(f"demo.py:{variant}: choose seed, fomm or tip24")
  c = base_config()
  c.name = f"demo_{variant}"
  c.model = demo_model(variant)
  c.data.name = "synthetic_me"
  c.data.image_size = SIZE
  # Flips (landmarks mirrored), time flips and colour jitter: with one training face the flip is a second
  # face layout, which the dense motion network needs to follow keypoints on an unseen face.
  c.data.augment = True
  c.batch_size = 8
  c.num_epochs = 100
  c.num_repeats = 1
  c.total_steps = 400
  c.optim.epoch_milestones = (60, 90)
  c.loss.scales = (1, 0.5)
  c.loss.perceptual = (10.0, 10.0, 0.0, 0.0, 0.0)
  c.loss.generator_gan = 0.0
  c.loss.landmark_flow = 30.0
  c.log_every = 10
  c.image_every = 100
  c.checkpoint_every = 100
  c.keep_checkpoints = 2
  return c
