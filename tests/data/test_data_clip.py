"""Clip.from_record: frames and landmarks decoded and resized together, the same pixels as the
training pairs and the generation path; labels, action units, ground truth; corpus clip lookup."""

import ml_collections
import numpy as np
import pytest

from me_fomm.data import augment as A
from me_fomm.data import images, pipeline, sources
from me_fomm.data.clip import Clip, parse_corpus_spec, read_corpus_clip
from me_fomm.generate import pipeline as generate_pipeline

SIZE = 32


def _record(n=5, size=SIZE, gt=True, **fields):
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
  truth = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
  record = {
    "frames": [images.encode_png(f) for f in frames],
    "landmarks": rng.uniform(2, size - 3, (n, 68, 2)).astype(np.float32),
    "onset": 1,
    "apex": 2,
    "offset": 4,
    "label": 2,
    "action_units": "AU1+AU2+AU5+AU26",
    "clip_id": "sub01/EP02_01f",
    "subject": "sub01",
    "corpus": "casme2",
    "fps": np.float32(200.0),
  }
  if gt:
    record["ground_truth_frames"] = [images.encode_png(f) for f in truth]
    record["ground_truth_landmarks"] = rng.uniform(2, size - 3, (n, 68, 2)).astype(np.float32)
  record.update(fields)
  return record, frames, truth


def test_from_record_decodes_everything_as_stored():
  record, frames, truth = _record()
  clip = Clip.from_record(record)
  assert clip.frames.dtype == np.uint8 and np.array_equal(clip.frames, frames)
  assert clip.landmarks.dtype == np.float32 and np.array_equal(clip.landmarks, record["landmarks"])
  assert np.array_equal(clip.ground_truth, truth)
  assert np.array_equal(clip.ground_truth_landmarks, record["ground_truth_landmarks"])
  assert (clip.onset, clip.apex, clip.offset, clip.fps) == (1, 2, 4, 200.0)
  assert clip.label == "surprise" and clip.action_units == (1, 2, 5, 26)
  assert (clip.corpus, clip.clip_id, clip.subject) == ("casme2", "sub01/EP02_01f", "sub01")
  assert clip.name == "sub01_EP02_01f" and len(clip) == 5  # the id carries the subject already


def test_names_labels_and_missing_fields():
  record, _, _ = _record(gt=False, clip_id=b"x1", subject=b"alice", label=b"positive")
  del record["action_units"], record["apex"], record["offset"], record["fps"]
  clip = Clip.from_record(record)
  assert clip.name == "alice_x1" and clip.label == "positive" and clip.action_units == ()
  assert clip.apex is None and clip.offset is None and clip.fps == 25.0
  assert clip.ground_truth is None and clip.ground_truth_landmarks is None
  assert Clip.from_record(_record(label=3)[0]).label == "other"


def test_resize_moves_frames_landmarks_and_ground_truth_together():
  record, frames, truth = _record()
  big = Clip.from_record(record, image_size=64)
  assert big.frames.shape == big.ground_truth.shape == (5, 64, 64, 3)
  for t in range(5):
    np.testing.assert_array_equal(big.frames[t], images.resize(frames[t], 64))
    np.testing.assert_array_equal(big.ground_truth[t], images.resize(truth[t], 64))
  # Pixel centres: x' = (x + 0.5) * 2 - 0.5.
  np.testing.assert_allclose(big.landmarks, (record["landmarks"] + 0.5) * 2 - 0.5, rtol=1e-6)
  np.testing.assert_allclose(
    big.ground_truth_landmarks, (record["ground_truth_landmarks"] + 0.5) * 2 - 0.5, rtol=1e-6
  )
  small = Clip.from_record(record).resized(16)
  assert small.frames.shape == (5, 16, 16, 3) and small.landmarks.shape == (5, 68, 2)
  assert Clip.from_record(record, image_size=SIZE).frames.shape == (5, SIZE, SIZE, 3)


@pytest.mark.parametrize("size", [16, 64])
def test_same_pixels_as_the_training_pairs_and_the_generation_path(size):
  record, _, _ = _record()
  clip = Clip.from_record(record, image_size=size)
  pair = pipeline.PairTransform(A.AugmentConfig.none(), image_size=size)(
    record, np.random.default_rng(3)
  )
  i, j = pair["frame_indices"]
  as_uint8 = lambda x: np.round(x * 255).astype(np.uint8)  # pairs are float32 [0, 1]
  np.testing.assert_array_equal(as_uint8(pair["source"]), clip.frames[i])
  np.testing.assert_array_equal(as_uint8(pair["driving"]), clip.frames[j])
  np.testing.assert_array_equal(pair["source_landmarks"], clip.landmarks[i])
  np.testing.assert_array_equal(pair["onset_landmarks"], clip.landmarks[clip.onset])
  cfg = ml_collections.ConfigDict(dict(image_size=size, kp_mode="prior"))
  drv, lms = generate_pipeline.prepare_driving(Clip.from_record(record), cfg)
  np.testing.assert_array_equal(drv, clip.frames)
  np.testing.assert_array_equal(lms, clip.landmarks)


def test_corpus_spec_parsing(tmp_path):
  assert parse_corpus_spec("casme2:sub01/EP02_01f") == ("casme2", "sub01/EP02_01f")
  assert parse_corpus_spec("smic/hs:s3/s3_po_05") == ("smic/hs", "s3/s3_po_05")
  assert parse_corpus_spec(str(tmp_path)) is None
  assert parse_corpus_spec("C:\\clips\\a.mp4") is None


def test_synthetic_records_and_corpus_lookup(synthetic_small):
  src = sources.load("synthetic_me/small", synthetic_small, "test")
  record = src[0]
  clip = read_corpus_clip("synthetic_me/small", record["clip_id"], synthetic_small)
  assert clip.clip_id == record["clip_id"] and clip.label in ("negative", "positive", "surprise")
  assert clip.frames.shape == clip.ground_truth.shape == (len(record["frames"]), 64, 64, 3)
  assert clip.ground_truth_landmarks.shape == clip.landmarks.shape
  assert len(clip.action_units) >= 2 and clip.subject == "grace_hopper"
  for t in (0, len(clip) - 1):
    np.testing.assert_array_equal(clip.frames[t], images.decode_frame(record["frames"][t]))
  with pytest.raises(ValueError, match="not found"):
    read_corpus_clip("synthetic_me/small", "no_such_clip", synthetic_small)
  with pytest.raises(ValueError, match="data_dir"):
    read_corpus_clip("synthetic_me/small", record["clip_id"], "")
