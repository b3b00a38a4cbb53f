"""The Grain pipeline of training: batches of (source, driving) frame pairs.

Pairs follow FOMM's training (Siarohin et al. 2019): each example is one clip, two of its
frames drawn at random serve as source and driving, and the model learns to warp one into
the other. The clip's onset-frame landmarks ride along because the seed model computes its
facial prior on the onset frame for both passes.

The pair pipeline is a `grain.MapDataset`: this host's shard of the clips
(`[shard_index::shard_count]`), in a new order each epoch drawn from `seed` (`EpochOrder`),
a seeded random map per element (frame choice, flips, colour) and a batch. Every random draw depends only on
(seed, element index), so order and content are deterministic for a seed, and the iterator's
state (`get_state()`/`set_state()`) is a small dict that the checkpoint stores as `data_iter`.
Batches are NumPy, ready for `jax.device_put` onto a mesh (leading axis = per-host batch).
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import threading

import grain
import numpy as np

from me_fomm.data import augment as A
from me_fomm.data import images, shards


def _check_clip(clip: dict) -> int:
  n = len(clip["frames"])
  if n < 1 or len(clip["landmarks"]) != n:
    raise ValueError(
      f"clip {clip.get('clip_id', '?')}: {n} frames but "
      f"{len(clip['landmarks'])} landmark sets; rebuild the dataset."
    )
  return n


def moving_frame(landmarks: np.ndarray, i: int, rng: np.random.Generator) -> int:
  """A frame j != i drawn with probability proportional to the mean distance of its landmarks
  (T, 68, 2) from frame i's (uniform when none moved).

  Micro-expression clips are mostly near-neutral frames, so most uniform pairs show almost no motion;
  this draws the onset-apex and apex-offset pairs that carry it more often (our option, off in the
  published configs).
  """
  d = np.linalg.norm(landmarks - landmarks[i], axis=-1).mean(axis=-1).astype(np.float64)
  d[i] = 0.0
  if not np.isfinite(d).all() or d.sum() <= 0:
    others = [t for t in range(len(landmarks)) if t != i]
    return int(rng.choice(others))
  return int(rng.choice(len(landmarks), p=d / d.sum()))


@dataclasses.dataclass
class PairTransform:
  """Clip dict + rng -> one training pair (see module doc). Picklable for Grain workers."""

  augment: A.AugmentConfig
  image_size: int | None = None
  motion_pairs: float = 0.0

  def __call__(self, clip: dict, rng: np.random.Generator) -> dict:
    n = _check_clip(clip)
    i, j = rng.choice(n, size=2, replace=False) if n > 1 else (0, 0)
    lm_all = np.asarray(clip["landmarks"], np.float32)
    if self.motion_pairs and n > 1 and rng.uniform() < self.motion_pairs:
      j = moving_frame(lm_all, i, rng)
    cfg = self.augment
    if cfg.time_flip_prob and rng.uniform() < cfg.time_flip_prob:
      i, j = j, i  # a reversed clip: the same two frames in the other order
    stored = clip["frames"]
    if isinstance(stored, np.ndarray):  # a frame store's clip: frames already decoded
      raw = np.stack([stored[i], stored[j]])
    else:
      with shards.decoding(clip, f"frames {i} and {j}"):
        raw = [images.decode_frame(stored[i]), images.decode_frame(stored[j])]
    frames, lms = images.resize_with_points(
      raw,
      np.stack([lm_all[i], lm_all[j], lm_all[int(clip["onset"])]]),
      self.image_size or raw[0].shape[0],
    )
    if cfg.flip_prob and rng.uniform() < cfg.flip_prob:
      frames, lms = A.hflip(frames, lms)
    if cfg.geometric:  # drawn only when asked for: FOMM's draws stay as they were
      frames, lms = A.warp_similarity(frames, lms, A.sample_similarity(rng, cfg, frames.shape[1]))
    if cfg.colour:
      frames = A.apply_colour_uint8(frames, A.sample_colour(rng, cfg))
    out = frames.astype(np.float32) * np.float32(1.0 / 255.0)
    return {
      "source": out[0],
      "driving": out[1],
      "source_landmarks": lms[0],
      "driving_landmarks": lms[1],
      "onset_landmarks": lms[2],
      "label": np.int32(clip["label"]),
      "frame_indices": np.asarray([i, j], np.int32),
    }


class PairLoader:
  """Iterator of pair batches with checkpointable state; wraps a Grain dataset iterator."""

  def __init__(self, dataset, batch_size: int):
    self._dataset = dataset
    self._iter = iter(dataset)
    self.batch_size = batch_size

  def __iter__(self) -> "PairLoader":
    return self

  def __next__(self) -> dict:
    return next(self._iter)

  def get_state(self) -> dict:
    return self._iter.get_state()

  def set_state(self, state: dict) -> None:
    self._iter.set_state(state)

  def close(self) -> None:
    """Stops Grain's worker processes/threads now (else at garbage collection)."""
    close = getattr(self._iter, "close", None)
    if close is not None:
      close()

  def __enter__(self) -> "PairLoader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class EpochOrder:
  """Random access to this host's clips, epoch after epoch, each epoch in its own order.

  Index i -> clip `indices[perm_e[k]]` where (e, k) = divmod(i // pairs_per_clip, n) and
  perm_e = permutation(n) drawn from (seed, e). A NumPy permutation per epoch replaces
  `MapDataset.shuffle`, whose per-element index shuffle costs ~5 ms for a few clips
  (grain 0.2; cycle-walking over a small range) -- more than decoding a pair.
  `pairs_per_clip` consecutive indices share one clip, read once: a clip record holds every
  frame, so reading it dominates a pair's cost at 256x256. `cache_clips` keeps that many
  clip records in memory (least recently used out); epochs visit every clip once in a new
  order, so only a cache of all this host's clips saves reads after the first epoch.
  """

  def __init__(
    self,
    source,
    indices,
    seed: int,
    num_epochs: int | None,
    pairs_per_clip: int = 1,
    cache_clips: int = 1,
  ):
    self._source, self._indices = source, list(indices)
    self._seed, self._k = int(seed), int(pairs_per_clip)
    self._n = len(self._indices)
    self._len = sys.maxsize if num_epochs is None else self._n * self._k * int(num_epochs)
    self._perms: dict = {}
    self._cache_size = max(1, int(cache_clips))
    self._cache: collections.OrderedDict = collections.OrderedDict()
    self._lock = threading.Lock()  # Grain's prefetch threads share this object

  def __len__(self) -> int:
    return self._len

  def clip_index(self, i: int) -> int:
    epoch, k = divmod(int(i) // self._k, self._n)
    perms = self._perms
    perm = perms.get(epoch)
    if perm is None:
      perm = np.random.default_rng([self._seed, epoch]).permutation(self._n)
      # Epochs are read in order (threads may straddle two): keep the latest two.
      self._perms = {e: p for e, p in perms.items() if e >= epoch - 1} | {epoch: perm}
    return self._indices[int(perm[k])]

  def __getitem__(self, i: int) -> dict:
    if not 0 <= i < self._len:
      raise IndexError(i)
    index = self.clip_index(i)
    with self._lock:
      clip = self._cache.get(index)
      if clip is not None:
        self._cache.move_to_end(index)
        return clip
    clip = self._source[index]  # read outside the lock: threads read in parallel
    with self._lock:
      self._cache[index] = clip
      while len(self._cache) > self._cache_size:
        self._cache.popitem(last=False)
    return clip

  def __getstate__(self):  # workers start with an empty cache (and their own lock)
    state = dict(self.__dict__)
    state["_cache"], state["_perms"] = collections.OrderedDict(), {}
    del state["_lock"]
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()


def _shard_indices(n: int, shard_index: int, shard_count: int) -> list:
  if shard_count < 1 or not 0 <= shard_index < shard_count:
    raise ValueError(
      f"shard_index must be in [0, shard_count) and shard_count >= 1; got "
      f"shard_index={shard_index}, shard_count={shard_count}."
    )
  if n < shard_count:
    raise ValueError(
      f"{n} clips cannot be split over {shard_count} hosts; use fewer hosts or a larger dataset."
    )
  return list(range(shard_index, n, shard_count))


def as_augment_config(augment) -> A.AugmentConfig:
  """True (FOMM's defaults), False/None (none), an AugmentConfig, or a mapping of its fields
  (e.g. an ml_collections ConfigDict from an experiment config)."""
  if augment is True:
    return A.AugmentConfig()
  if augment is False or augment is None:
    return A.AugmentConfig.none()
  if isinstance(augment, A.AugmentConfig):
    return augment
  if hasattr(augment, "to_dict"):
    augment = augment.to_dict()
  if isinstance(augment, dict):
    fields = {f.name for f in dataclasses.fields(A.AugmentConfig)}
    unknown = set(augment) - fields
    if unknown:
      raise ValueError(f"augment: unknown fields {sorted(unknown)}; known: {sorted(fields)}.")
    return A.AugmentConfig(**augment)
  raise ValueError(
    f"augment must be a bool, an AugmentConfig or a dict of its fields, got "
    f"{type(augment).__name__}."
  )


def pair_loader(
  source,
  batch_size: int,
  seed: int = 0,
  shard_index: int = 0,
  shard_count: int = 1,
  augment: A.AugmentConfig | bool = True,
  image_size: int | None = None,
  num_epochs: int | None = None,
  drop_remainder: bool = True,
  worker_count: int = 0,
  worker_buffer_size: int = 2,
  read_threads: int | None = None,
  pairs_per_clip: int = 1,
  cache_clips: int = 1,
  frame_store: str = "",
  motion_pairs: float = 0.0,
) -> PairLoader:
  """Batches of {'source', 'driving': (B,S,S,3) float32 in [0,1]; 'source_landmarks',
  'driving_landmarks', 'onset_landmarks': (B,68,2) float32 px; 'label': (B,) int32;
  'frame_indices': (B,2) int32}.

  Args:
    source: random-access clips (`me_fomm.data.sources.load`), or any sequence of clip dicts.
    batch_size: examples per batch on this host.
    seed: order, frame choice and augmentation are a function of the seed (and the shard).
    shard_index, shard_count: this host's part (`jax.process_index()`, `jax.process_count()`).
    augment: True for FOMM's defaults, False for none, an `AugmentConfig` or a dict of its
      fields (`as_augment_config`).
    image_size: resize decoded frames (and landmarks) to this size; None keeps the stored size.
    num_epochs: None repeats forever.
    worker_count: >0 decodes in that many Grain worker processes.
    read_threads: threads that prefetch elements in each process (Grain's default when None;
      0 computes each batch on demand in the calling thread, as the benchmark does).
    pairs_per_clip: draw this many pairs from each clip read (consecutive in a batch):
      fewer record reads, less clip diversity per batch. 1 is FOMM's sampling.
    cache_clips: clip records kept in memory per process; set it to the number of clips
      (per host) when they fit in RAM to read each clip once (the records of every worker
      process are cached separately).
    frame_store: '' reads clip records; 'auto' or a local folder reads the split's decoded
      frames from a memory-mapped store there (`me_fomm.data.frame_store`, built on first use):
      a pair then copies two frames instead of reading a whole record and decoding two images.
    motion_pairs: the fraction of pairs whose driving frame is drawn by how far its landmarks moved
      from the source frame's (`moving_frame`) rather than uniformly; 0 is FOMM's sampling (and
      draws nothing more).
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  n = len(source)
  if n == 0:
    raise ValueError("pair_loader: the source has no clips.")
  augment = as_augment_config(augment)
  if pairs_per_clip < 1:
    raise ValueError(f"pairs_per_clip must be >= 1, got {pairs_per_clip}.")
  if not 0.0 <= motion_pairs <= 1.0:
    raise ValueError(
      f"motion_pairs (config.data.motion_pairs) must be a share in [0, 1], got {motion_pairs!r}."
    )
  if frame_store:
    from me_fomm.data import frame_store as store

    source = store.open_store(source, frame_store, progress=shard_index == 0)
  indices = _shard_indices(n, shard_index, shard_count)
  per_host = len(indices) * pairs_per_clip
  if drop_remainder and num_epochs is not None and per_host * num_epochs < batch_size:
    raise ValueError(
      f"{len(indices)} clips x {pairs_per_clip} pairs x {num_epochs} epochs "
      f"make no full batch of {batch_size}; lower batch_size or pass "
      "drop_remainder=False."
    )
  if cache_clips < 1:
    raise ValueError(f"cache_clips must be >= 1, got {cache_clips}.")
  ds = grain.MapDataset.source(
    EpochOrder(source, indices, seed, num_epochs, pairs_per_clip, cache_clips)
  )
  ds = ds.random_map(PairTransform(augment, image_size, motion_pairs), seed=seed)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  read = (
    None
    if read_threads is None
    else grain.ReadOptions(
      num_threads=read_threads, prefetch_buffer_size=0 if read_threads == 0 else 2 * batch_size
    )
  )
  it_ds = ds.to_iter_dataset(read) if read is not None else ds.to_iter_dataset()
  if worker_count > 0:
    from absl import flags

    if not flags.FLAGS.is_parsed():
      # Grain's workers read its absl flags; outside an absl main (notebooks, plain scripts,
      # tests) they were never parsed, so take their defaults.
      flags.FLAGS.mark_as_parsed()
    it_ds = it_ds.mp_prefetch(
      grain.MultiprocessingOptions(
        num_workers=worker_count, per_worker_buffer_size=worker_buffer_size
      )
    )
  return PairLoader(it_ds, batch_size)


# The `pair_loader` arguments an experiment's `config.data` sets (experiments/configs/base.py);
# the trainer and the data benchmark both read them here, so a benchmark measures what trains.
LOADER_FIELDS = (
  "augment",
  "image_size",
  "worker_count",
  "worker_buffer_size",
  "read_threads",
  "pairs_per_clip",
  "cache_clips",
  "frame_store",
  "motion_pairs",
)


def loader_options(data_config) -> dict:
  """{pair_loader argument: value} of a `config.data`; a field it lacks keeps its default."""
  return {k: data_config[k] for k in LOADER_FIELDS if k in data_config}
