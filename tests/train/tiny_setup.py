"""Tiny configs and data shared by the training tests and their subprocess workers.

The model is the real one at toy widths (32 px, hourglasses of two blocks), the data real clips
in the dataset's record layout (PNG frames, 68 landmarks, onset index) run through the real
`me_fomm.data.pipeline.pair_loader`: a bright face-like blob that moves between frames, so a few
steps of training have something to learn.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

import numpy as np

SIZE = 32

# The losses a step of the tiny seed model with its GAN reports (and `loss`, their sum).
LOSSES = (
  "loss",
  "perceptual",
  "generator_gan",
  "feature_matching",
  "equivariance_value",
  "equivariance_jacobian",
  "disc_gan",
)


def tiny_config(variant: str = "seed", gan: bool = True):
  from me_fomm_experiments.configs.base import base_config
  from me_fomm_experiments.configs.demo import tiny_model

  c = base_config()
  c.name = f"tiny_{variant}"
  c.model = tiny_model(variant, image_size=SIZE)
  c.data.name = "in_memory"
  c.data.image_size = SIZE
  c.data.augment = False
  c.data.read_threads = 0  # each batch computed on demand: no prefetch threads in the tests
  c.batch_size = 4
  c.loss.scales = (1,)
  # VGG only up to relu2_2: the deep layers are most of a tiny step's FLOPs.
  c.loss.perceptual = (10.0, 10.0, 0.0, 0.0, 0.0)
  c.loss.feature_matching = (10.0, 10.0)
  c.loss.generator_gan = 1.0 if gan else 0.0
  c.steps_per_epoch = 100
  c.num_epochs = 1
  c.log_every = 1
  c.image_every = 0
  c.checkpoint_every = 2
  c.async_checkpoints = True
  # A large Adam epsilon makes the update ~ lr * g (instead of lr * sign(g) on the first step), so
  # runs compare at float32 round-off rather than flipping with the sign of tiny gradients; the
  # larger learning rate keeps the steps as big as plain Adam's. Every tiny test uses this one
  # program, so it compiles once (persistent cache in conftest.py).
  c.optim.eps = 1.0
  c.optim.lr_kp_detector = c.optim.lr_generator = c.optim.lr_discriminator = 2e-3
  # Tiny programs: compile fast rather than run fast.
  c.compiler_options = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
  }
  return c


def _landmarks(center, scale):
  """A rough 68-point face (dlib order) around `center` (px), `scale` px wide."""
  from benchmarks.train import synthetic_landmarks

  base = synthetic_landmarks(1, 2, np.random.default_rng(0))[0] - 0.5  # unit face around 0
  return (base * scale + center).astype(np.float32)


def _frame(center, scale, size=SIZE):
  yy, xx = np.mgrid[:size, :size].astype(np.float32)
  blob = np.exp(
    -(((xx - center[0]) / (0.35 * scale)) ** 2 + ((yy - center[1]) / (0.45 * scale)) ** 2)
  )
  eyes = sum(
    np.exp(-(((xx - center[0] + dx) ** 2 + (yy - center[1] + 0.1 * scale) ** 2) / 2.0))
    for dx in (-0.15 * scale, 0.15 * scale)
  )
  img = np.stack([0.2 + 0.7 * blob - 0.4 * eyes, 0.15 + 0.6 * blob, 0.3 + 0.4 * blob], -1)
  return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def tiny_clips(num_clips: int = 6, frames: int = 4, seed: int = 0) -> list[dict]:
  """Clip records as the TFDS builders store them (what `pair_loader` reads)."""
  from me_fomm.data.images import encode_png

  rng = np.random.default_rng(seed)
  clips = []
  for c in range(num_clips):
    start = rng.uniform(12, 20, 2)
    move = rng.uniform(-3, 3, 2)
    scale = rng.uniform(18, 24)
    centers = [start + move * t / max(frames - 1, 1) for t in range(frames)]
    clips.append(
      {
        "frames": [encode_png(_frame(ct, scale)) for ct in centers],
        "landmarks": np.stack([_landmarks(ct, scale) for ct in centers]),
        "onset": 0,
        "apex": frames - 1,
        "offset": frames - 1,
        "label": c % 4,
        "clip_id": f"tiny{c}",
      }
    )
  return clips


def tiny_data_fn(config, local_batch, shard_index, shard_count):
  """`trainer.train`'s data_fn on in-memory clips through the real pair loader."""
  from me_fomm.train import trainer

  return trainer.make_pair_loader(config, local_batch, shard_index, shard_count, tiny_clips())


def tiny_batch(batch: int = 4, seed: int = 0) -> dict:
  """One global batch of pairs (numpy), the same on every process."""
  from me_fomm.data import pipeline

  loader = pipeline.pair_loader(
    tiny_clips(seed=seed),
    batch_size=batch,
    seed=seed,
    augment=False,
    image_size=SIZE,
    read_threads=0,
  )
  return {k: np.asarray(v) for k, v in next(loader).items()}


def subprocess_env(cache_dir: str, devices: int = 4) -> dict:
  """Environment of a test subprocess: simulated devices, CPU, the shared compilation cache."""
  here = os.path.dirname(__file__)
  repo = os.path.dirname(os.path.dirname(here))
  return dict(
    os.environ,
    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    JAX_PLATFORMS="cpu",
    JAX_COMPILATION_CACHE_DIR=cache_dir,
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    # The caller's path after ours: the subprocess imports the packages this process imports.
    PYTHONPATH=os.pathsep.join(filter(None, [repo, here, os.environ.get("PYTHONPATH")])),
  )


def trainer_config():
  """The trainer tests' config: the tiny seed model with its GAN, 12 steps."""
  c = tiny_config("seed", gan=True)
  c.total_steps = 12
  c.checkpoint_every = 4
  c.keep_checkpoints = 1
  c.keep_every = 8
  c.image_every = 6
  c.log_every = 1
  return c


def shared_dir(tmp_path_factory, name: str):
  """A folder shared by every pytest-xdist worker of this run (each worker has its own basetemp;
  their parent is the run's)."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  path = root / name
  path.mkdir(exist_ok=True)
  return path


@contextlib.contextmanager
def exclusive(lock_path):
  """Holds an exclusive lock on `lock_path` (one worker at a time)."""
  with open(lock_path, "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
