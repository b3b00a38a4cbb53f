"""A few minutes on two CPU cores: the seed's model at small widths, 64 px, on the synthetic corpus.

`--config=experiments/configs/demo.py` (seed: prior keypoints from the synthetic faces' landmarks)
or `demo.py:fomm` (10 learned keypoints). To keep a step cheap the GAN is off, the perceptual
pyramid has two scales and reads VGG16 up to relu2_2 (the deeper layers are ~80% of the step's
FLOPs at 64 px); everything else (losses, optimiser, checkpoints) is the full machinery.
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
        generator=dict(block_expansion=16, max_features=64, num_down_blocks=2,
                       num_bottleneck_blocks=1,
                       dense_motion=dict(block_expansion=16, max_features=64, num_blocks=3,
                                         scale_factor=0.5)),
        discriminator=dict(scales=[1], block_expansion=8, max_features=64, num_blocks=4))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "seed"
    if variant not in ("seed", "fomm", "tip24"):
        raise ValueError(f"demo.py:{variant}: choose seed, fomm or tip24")
    c = base_config()
    c.name = f"demo_{variant}"
    c.model = demo_model(variant)
    c.data.name = "synthetic_me"
    c.data.image_size = SIZE
    c.data.augment = False
    c.batch_size = 8
    c.num_epochs = 100
    c.num_repeats = 1
    c.total_steps = 400
    c.optim.epoch_milestones = (60, 90)
    c.loss.scales = (1, 0.5)
    c.loss.perceptual = (10.0, 10.0, 0.0, 0.0, 0.0)
    c.loss.generator_gan = 0.0
    c.log_every = 10
    c.image_every = 100
    c.checkpoint_every = 100
    c.keep_checkpoints = 2
    return c
