"""Grain pair pipeline: shapes, determinism, state, shards, augmentation, loader options."""

import numpy as np
import pytest

from me_fomm.data import augment as A
from me_fomm.data import images, pipeline, sources
from me_fomm.prior.au_keypoints import MIRROR_68

SIZE = 32


def _clip(k, n=6, size=SIZE):
  rng = np.random.default_rng(k)
  frames = [
    images.encode_png(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)
  ]
  lms = rng.uniform(2, size - 3, (n, 68, 2)).astype(np.float32)
  return {
    "frames": frames,
    "landmarks": lms,
    "onset": 1,
    "apex": 3,
    "offset": n - 1,
    "label": k % 3,
    "clip_id": f"c{k}",
    "subject": f"s{k % 4}",
    "corpus": "fake",
  }


SOURCE = [_clip(k) for k in range(10)]


def _batches(it, n):
  return [next(it) for _ in range(n)]


def test_pair_batch_layout():
  b = next(pipeline.pair_loader(SOURCE, batch_size=4, seed=0))
  assert b["source"].shape == b["driving"].shape == (4, SIZE, SIZE, 3)
  assert b["source"].dtype == np.float32 and 0.0 <= b["source"].min() and b["source"].max() <= 1.0
  for key in ("source_landmarks", "driving_landmarks", "onset_landmarks"):
    assert b[key].shape == (4, 68, 2) and b[key].dtype == np.float32
  assert b["label"].shape == (4,) and b["frame_indices"].shape == (4, 2)
  assert (b["frame_indices"][:, 0] != b["frame_indices"][:, 1]).all()


def test_pairs_match_their_clips_without_augmentation():
  b = next(pipeline.pair_loader(SOURCE, batch_size=10, seed=5, augment=False))
  for e in range(10):
    clip = next(
      c
      for c in SOURCE
      if c["label"] == b["label"][e]
      and np.array_equal(
        np.asarray(c["landmarks"][b["frame_indices"][e, 0]]), b["source_landmarks"][e]
      )
    )
    i, j = b["frame_indices"][e]
    assert np.allclose(b["source"][e], images.decode_frame(clip["frames"][i]) / 255.0)
    assert np.allclose(b["driving"][e], images.decode_frame(clip["frames"][j]) / 255.0)
    assert np.array_equal(b["onset_landmarks"][e], clip["landmarks"][1])


def test_deterministic_per_seed_and_restorable():
  a = _batches(pipeline.pair_loader(SOURCE, 3, seed=7), 5)
  b = _batches(pipeline.pair_loader(SOURCE, 3, seed=7), 5)
  c = _batches(pipeline.pair_loader(SOURCE, 3, seed=8), 5)
  assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
  assert not all(np.array_equal(x["source"], y["source"]) for x, y in zip(a, c))
  it = pipeline.pair_loader(SOURCE, 3, seed=7)
  _batches(it, 2)
  state = it.get_state()
  later = _batches(it, 3)
  fresh = pipeline.pair_loader(SOURCE, 3, seed=7)
  fresh.set_state(state)
  assert all(np.array_equal(x[k], y[k]) for x, y in zip(later, _batches(fresh, 3)) for k in x)
  assert all(np.array_equal(x[k], y[k]) for x, y in zip(later, a[2:]) for k in x)


def test_shards_are_disjoint_and_cover_an_epoch():
  seen = []
  for shard in range(2):
    it = pipeline.pair_loader(
      SOURCE, 5, seed=1, shard_index=shard, shard_count=2, num_epochs=1, augment=False
    )
    labels = [f"{l}" for b in it for l in b["onset_landmarks"][:, 0, 0]]
    seen.append(set(labels))
  assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 10
  with pytest.raises(ValueError, match="shard_index"):
    pipeline.pair_loader(SOURCE, 2, shard_index=2, shard_count=2)
  with pytest.raises(ValueError, match="cannot be split"):
    pipeline.pair_loader(SOURCE[:1], 1, shard_count=2)


def test_epochs_reshuffle():
  it = pipeline.pair_loader(SOURCE, 10, seed=3, num_epochs=2, augment=False)
  e1, e2 = next(it), next(it)
  assert not np.array_equal(e1["onset_landmarks"], e2["onset_landmarks"])
  assert sorted(e1["onset_landmarks"][:, 0, 0]) == sorted(e2["onset_landmarks"][:, 0, 0])


def test_resize_scales_landmarks():
  b = next(pipeline.pair_loader(SOURCE, 2, seed=0, augment=False, image_size=64))
  assert b["source"].shape == (2, 64, 64, 3)
  raw = next(pipeline.pair_loader(SOURCE, 2, seed=0, augment=False))
  assert np.allclose(b["source_landmarks"], (raw["source_landmarks"] + 0.5) * 2 - 0.5)


def test_hflip_moves_pixels_and_landmarks_together():
  size = 48
  rng = np.random.default_rng(0)
  pts = np.stack(np.meshgrid(np.arange(2, 46, 5), np.arange(2, 46, 5)), -1).reshape(-1, 2)[:68]
  frame = np.zeros((size, size, 3), np.uint8)
  colours = rng.permutation(np.arange(1, 250))[:68]
  for k, (x, y) in enumerate(pts):
    frame[y, x] = colours[k]
  flipped, lms = A.hflip(frame, pts.astype(np.float32))
  for k in range(68):
    x, y = lms[k].astype(int)
    # Slot k now holds point MIRROR_68[k]'s position, and its pixel moved with it.
    assert flipped[y, x, 0] == colours[MIRROR_68[k]]


def test_pair_flip_is_applied_to_both_frames_and_all_landmarks():
  clip = _clip(0, n=2)
  cfg = A.AugmentConfig(
    flip_prob=1.0, time_flip_prob=0.0, brightness=0, contrast=0, saturation=0, hue=0
  )
  out = pipeline.PairTransform(cfg)(clip, np.random.default_rng(0))
  i, j = out["frame_indices"]
  assert np.allclose(out["source"], images.decode_frame(clip["frames"][i])[:, ::-1] / 255.0)
  lm = np.asarray(clip["landmarks"][i])
  assert np.allclose(out["source_landmarks"][36], [SIZE - 1 - lm[45, 0], lm[45, 1]])
  assert np.allclose(
    out["onset_landmarks"][36],
    [SIZE - 1 - clip["landmarks"][1][45, 0], clip["landmarks"][1][45, 1]],
  )


def test_colour_jitter():
  x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
  assert A.apply_colour(x, A.ColourParams()) is x
  gray = np.repeat(x[..., :1], 3, axis=-1)
  y = A.apply_colour(gray, A.ColourParams(hue=0.3, saturation=1.5))
  assert np.allclose(y, gray, atol=1e-5)  # hue and saturation leave gray alone
  z = A.apply_colour(x, A.ColourParams(brightness=1.1, contrast=0.9, saturation=0.9, hue=0.05))
  assert z.dtype == np.float32 and z.min() >= 0 and z.max() <= 1 and not np.allclose(z, x)
  p = A.sample_colour(np.random.default_rng(1), A.AugmentConfig())
  assert 0.9 <= p.brightness <= 1.1 and -0.1 <= p.hue <= 0.1
  with pytest.raises(ValueError, match="flip_prob"):
    A.AugmentConfig(flip_prob=2.0)


def test_synthetic_source_end_to_end(synthetic_small):
  src = sources.load("synthetic_me/small", synthetic_small, "train", image_size=64)
  assert len(src) == 6 and isinstance(src[0]["clip_id"], str)
  b = next(pipeline.pair_loader(src, batch_size=4, seed=0))
  assert b["source"].shape == (4, 64, 64, 3)


def test_epoch_order_and_pairs_per_clip():
  order = pipeline.EpochOrder(SOURCE, list(range(0, 10, 2)), seed=4, num_epochs=3, pairs_per_clip=2)
  assert len(order) == 30
  first = [order.clip_index(i) for i in range(10)]
  assert first[0::2] == first[1::2]  # two pairs per clip read
  assert sorted(first[0::2]) == [0, 2, 4, 6, 8]
  second = [order.clip_index(i) for i in range(10, 20, 2)]
  assert sorted(second) == [0, 2, 4, 6, 8] and second != first[0::2]
  with pytest.raises(IndexError):
    order[30]
  b = next(pipeline.pair_loader(SOURCE, 4, seed=0, pairs_per_clip=2, augment=False))
  assert np.array_equal(b["onset_landmarks"][0], b["onset_landmarks"][1])


def test_uint8_colour_matches_float():
  x = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
  for p in [A.ColourParams(1.1, 0.9, 1.1, 0.08), A.ColourParams(0.9, 1.1, 0.9, -0.1)]:
    ref = A.apply_colour(x.astype(np.float32) / 255.0, p)
    got = A.apply_colour_uint8(x, p).astype(np.float32) / 255.0
    assert np.abs(got - ref).max() <= 1.5 / 255.0


def test_augment_argument_forms():
  assert pipeline.as_augment_config(True) == A.AugmentConfig()
  assert pipeline.as_augment_config(None) == A.AugmentConfig.none()
  assert pipeline.as_augment_config({"flip_prob": 1.0}).flip_prob == 1.0
  with pytest.raises(ValueError, match="unknown fields"):
    pipeline.as_augment_config({"elastic": 1.0})
  with pytest.raises(ValueError, match="bool"):
    pipeline.as_augment_config("yes")


class _CountingSource:
  def __init__(self, clips):
    self.clips, self.reads = clips, 0

  def __len__(self):
    return len(self.clips)

  def __getitem__(self, i):
    self.reads += 1
    return self.clips[i]


def test_clip_cache_reads_each_clip_once():
  src = _CountingSource(SOURCE)
  order = pipeline.EpochOrder(src, range(10), seed=0, num_epochs=3, cache_clips=10)
  for i in range(30):
    order[i]
  assert src.reads == 10
  src.reads = 0
  order = pipeline.EpochOrder(src, range(10), seed=0, num_epochs=3, pairs_per_clip=2)
  for i in range(60):
    order[i]
  assert src.reads == 30
  cached = pipeline.pair_loader(SOURCE, 4, seed=3, cache_clips=10)
  plain = pipeline.pair_loader(SOURCE, 4, seed=3)
  for _ in range(4):
    a, b = next(cached), next(plain)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_worker_processes_match_in_process(synthetic_small):
  # The TFDS source is pickled to a Grain worker (its builder re-created from a config name).
  src = sources.load("synthetic_me/small", synthetic_small, "train")
  with pipeline.pair_loader(src, 4, seed=2, worker_count=1) as workers:
    got = [next(workers) for _ in range(2)]
  with pipeline.pair_loader(src, 4, seed=2, read_threads=0) as local:
    want = [next(local) for _ in range(2)]
  assert all(np.array_equal(a[k], b[k]) for a, b in zip(got, want) for k in a)


def test_prefetch_threads_give_the_same_batches():
  threaded = pipeline.pair_loader(
    SOURCE, 3, seed=9, read_threads=4, cache_clips=3, pairs_per_clip=2
  )
  local = pipeline.pair_loader(SOURCE, 3, seed=9, read_threads=0, cache_clips=3, pairs_per_clip=2)
  for _ in range(12):
    a, b = next(threaded), next(local)
    assert all(np.array_equal(a[k], b[k]) for k in a)
  import pickle

  order = pickle.loads(pickle.dumps(pipeline.EpochOrder(SOURCE, range(10), 0, None, 1, 4)))
  assert order[0]["clip_id"] == SOURCE[order.clip_index(0)]["clip_id"]


def test_loader_options_of_the_base_config_are_pair_loaders_defaults():
  import inspect

  from me_fomm_experiments.configs import base

  options = pipeline.loader_options(base.base_config().data)
  assert set(options) == set(pipeline.LOADER_FIELDS)
  defaults = inspect.signature(pipeline.pair_loader).parameters
  speed = set(pipeline.LOADER_FIELDS) - {"augment", "image_size"}
  assert {k: options[k] for k in speed} == {k: defaults[k].default for k in speed}
  assert pipeline.loader_options({"pairs_per_clip": 2}) == {"pairs_per_clip": 2}


def test_similarity_warp_moves_pixels_and_landmarks_together():
  size = 64
  rng = np.random.default_rng(3)
  cfg = A.AugmentConfig(rotate=10.0, scale=0.1, shift=0.05)
  pts = rng.uniform(16, 48, (68, 2)).astype(np.float32)
  for _ in range(5):
    m = A.sample_similarity(rng, cfg, size)
    zoom = np.sqrt(abs(np.linalg.det(m[:, :2])))
    assert 0.9 <= zoom <= 1.1
    for x, y in pts[:6]:
      # A bright blob at one landmark lands where the landmark goes.
      frame = np.zeros((1, size, size, 3), np.uint8)
      yy, xx = np.mgrid[:size, :size]
      frame[0][(xx - x) ** 2 + (yy - y) ** 2 < 4] = 255
      out, moved = A.warp_similarity(frame, np.array([[x, y]], np.float32), m)
      w = out[0, ..., 0].astype(np.float64)
      centre = np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()
      assert np.abs(centre - moved[0]).max() < 0.3
  # Off (FOMM's default): no extra draws, so the pairs are those of the plain augmentation.
  assert not A.AugmentConfig().geometric
  with pytest.raises(ValueError, match="rotate"):
    A.AugmentConfig(rotate=90.0)
  warped = next(pipeline.pair_loader(SOURCE, 4, seed=1, augment={"rotate": 8.0, "shift": 0.1}))
  plain = next(pipeline.pair_loader(SOURCE, 4, seed=1))
  assert warped["source"].shape == plain["source"].shape
  assert not np.array_equal(warped["source_landmarks"], plain["source_landmarks"])


def test_motion_pairs_draw_the_frames_that_moved():
  n = 8
  clip = _clip(0, n=n)
  # A still face whose landmarks move in frames 5 and 6 only (a micro-expression's apex).
  clip["landmarks"] = np.broadcast_to(clip["landmarks"][:1], (n, 68, 2)).copy()
  clip["landmarks"][5:7] += 1.5
  drawn = {}
  for share in (0.0, 1.0):
    t = pipeline.PairTransform(A.AugmentConfig.none(), motion_pairs=share)
    pairs = [t(clip, np.random.default_rng(s))["frame_indices"] for s in range(200)]
    # Pairs whose two frames differ in landmarks: one frame in the apex, the other not.
    drawn[share] = np.mean([(i in (5, 6)) != (j in (5, 6)) for i, j in pairs])
  # Uniform pairs cross the apex 2 * (2/8) * (6/7) = 43% of the time; motion pairs always do.
  assert 0.3 < drawn[0.0] < 0.56 and drawn[1.0] == 1.0
  # Off, it draws what FOMM's sampling draws: two distinct frames, uniformly, and nothing more.
  off = pipeline.PairTransform(A.AugmentConfig.none())
  for s in range(20):
    expected = np.random.default_rng(s).choice(n, size=2, replace=False)
    np.testing.assert_array_equal(off(clip, np.random.default_rng(s))["frame_indices"], expected)
  with pytest.raises(ValueError, match="motion_pairs"):
    pipeline.pair_loader([clip], batch_size=1, motion_pairs=1.5)
