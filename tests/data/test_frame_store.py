"""The frame store: a split's decoded frames memory-mapped, read by the pair loader like the records."""

import os
import pickle

import numpy as np
import pytest

from me_fomm.data import frame_store, images, pipeline, sources


@pytest.fixture()
def small(synthetic_small):
  return sources.load("synthetic_me/small", synthetic_small, "train", image_size=64)


def test_store_holds_the_records_frames_and_fields(small, tmp_path):
  store = frame_store.open_store(small, str(tmp_path))
  assert len(store) == len(small)
  for i in (0, len(small) - 1):
    rec, got = small[i], store[i]
    want = np.stack([images.decode_frame(f) for f in rec["frames"]])
    assert got["frames"].dtype == np.uint8 and np.array_equal(got["frames"], want)
    assert np.array_equal(got["landmarks"], np.asarray(rec["landmarks"], np.float32))
    assert (got["onset"], got["label"], got["clip_id"]) == (
      int(rec["onset"]),
      int(rec["label"]),
      rec["clip_id"],
    )
  again = pickle.loads(pickle.dumps(store))  # what a Grain worker process gets
  assert np.array_equal(again[1]["frames"], store[1]["frames"])


def test_pairs_from_the_store_equal_pairs_from_the_records(small, tmp_path):
  kw = dict(batch_size=4, seed=5, augment=True, read_threads=0)
  stored = pipeline.pair_loader(small, frame_store=str(tmp_path), **kw)
  plain = pipeline.pair_loader(small, **kw)
  for _ in range(3):
    a, b = next(stored), next(plain)
    assert all(np.array_equal(a[k], b[k]) for k in b)
  sub = frame_store.open_store(sources.Subset(small, [4, 1]), str(tmp_path))
  assert [c["clip_id"] for c in (sub[0], sub[1])] == [small[4]["clip_id"], small[1]["clip_id"]]


def test_auto_lives_in_the_version_folder_and_passes_plain_sources_through(small):
  assert frame_store.store_folder(small, "auto") == os.path.join(
    small.folder, "frame_store", "train"
  )
  clips = [small[0], small[1]]
  assert frame_store.open_store(clips, "auto") is clips
  with pytest.raises(ValueError, match="needs a built dataset split"):
    frame_store.open_store(clips, "/tmp/somewhere")


def test_a_stale_or_broken_store_is_built_again(small, tmp_path):
  store = frame_store.open_store(small, str(tmp_path))
  folder = store.folder
  want = np.array(store[2]["frames"])
  # Truncated frames (a build killed after the rename cannot happen; a disk error can).
  with open(os.path.join(folder, "frames.u8"), "r+b") as f:
    f.truncate(1000)
  assert not frame_store.is_current(folder, frame_store.fingerprint(small))
  assert np.array_equal(frame_store.open_store(small, str(tmp_path))[2]["frames"], want)
  # The dataset rebuilt: its shards' fingerprint changes, so the store follows.
  meta = os.path.join(folder, "meta.json")
  before = os.stat(meta).st_mtime_ns
  shard = sorted(n for n in os.listdir(small.folder) if "-train." in n)[0]
  path = os.path.join(small.folder, shard)
  st = os.stat(path)
  try:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    frame_store.open_store(small, str(tmp_path))
    assert os.stat(meta).st_mtime_ns != before
  finally:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
  assert not [n for n in os.listdir(os.path.dirname(folder)) if n.startswith(".frame_store_")]


def test_an_unwritable_folder_is_one_clear_error(small, tmp_path):
  blocked = tmp_path / "file"
  blocked.write_text("not a folder")
  with pytest.raises(
    ValueError, match="could not write the frame store .* config.data.frame_store"
  ):
    frame_store.open_store(small, str(blocked))
