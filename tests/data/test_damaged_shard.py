"""A damaged record shard (truncated, flipped bytes, missing, undecodable frame, broken JSON):
one DamagedShardError naming the file and the `me-fomm prepare ... --overwrite` that rebuilds
it, from a plain read, a Grain worker and a command; `--overwrite` then repairs the build."""

import os
import pickle
import shutil
import subprocess
import sys

import pytest

from me_fomm.data import clip as clip_lib
from me_fomm.data import pipeline, shards, sources

NAME = "synthetic_me/small"
TRAIN = "synthetic_me-train.array_record-00000-of-00001"


@pytest.fixture
def data_dir(synthetic_small, tmp_path):
  """A private copy of the small synthetic build (the session's is shared: never damage it)."""
  rel = os.path.join("synthetic_me", "small_64")
  shutil.copytree(synthetic_small / rel, tmp_path / rel)
  return tmp_path


def _shard(data_dir) -> str:
  return str(data_dir / "synthetic_me" / "small_64" / "1.0.0" / TRAIN)


def _read_all(data_dir):
  source = sources.load(NAME, str(data_dir), "train")
  return [clip_lib.Clip.from_record(source[i]) for i in range(len(source))]


def _assert_names_shard_and_rebuild(error, shard, data_dir):
  text = str(error)
  assert "\n" not in text
  assert shard in text and "damaged" in text and "truncated or corrupt" in text
  assert f"me-fomm prepare --dataset={NAME} --data_dir={data_dir} --overwrite" in text
  assert isinstance(error, ValueError) and error.shard == shard


def test_undamaged_records_read_as_before(synthetic_small):
  source = sources.load(NAME, str(synthetic_small), "train")
  raw = sources.builder(NAME, str(synthetic_small)).as_data_source("train")[0]
  record = source[0]
  assert set(record) == set(raw) and record["clip_id"] == raw["clip_id"].decode()
  assert record.origin.shard.endswith(TRAIN) and record.origin.index == 0
  again = pickle.loads(pickle.dumps(record))  # as a Grain worker's record travels
  assert set(again) == set(record) and again["clip_id"] == record["clip_id"]
  assert again.origin == record.origin
  with pytest.raises(IndexError):
    source[len(source)]


def test_truncated_shard(data_dir):
  shard = _shard(data_dir)
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  with pytest.raises(shards.DamagedShardError) as e:
    _read_all(data_dir)
  _assert_names_shard_and_rebuild(e.value, shard, data_dir)
  assert "Riegeli" in str(e.value)  # the low-level reason, as a hint
  # Cut below array_record's smallest file: it fails when the reader opens.
  with open(shard, "r+b") as f:
    f.truncate(1000)
  with pytest.raises(shards.DamagedShardError, match="at least 64KB") as e:
    _read_all(data_dir)
  _assert_names_shard_and_rebuild(e.value, shard, data_dir)


def test_flipped_bytes_in_the_middle_of_a_shard(data_dir):
  shard = _shard(data_dir)
  data = bytearray(open(shard, "rb").read())
  middle = len(data) // 2
  data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
  open(shard, "wb").write(bytes(data))
  with pytest.raises(shards.DamagedShardError) as e:
    _read_all(data_dir)
  _assert_names_shard_and_rebuild(e.value, shard, data_dir)
  assert "hash mismatch" in str(e.value)


def test_missing_shard(data_dir):
  shard = _shard(data_dir)
  os.remove(shard)
  with pytest.raises(shards.DamagedShardError, match="is missing") as e:
    _read_all(data_dir)
  assert shard in str(e.value) and "--overwrite" in str(e.value)


class _BadFrames:
  """A TFDS data source whose records have one undecodable frame, as a flipped byte inside a
  PNG payload would leave them (Riegeli's chunk hashes catch nearly every flip before that)."""

  def __init__(self, source):
    self.data_source = source.data_source  # the array_record reader: names the shard
    self._source = source

  def __len__(self):
    return len(self._source)

  def __getitem__(self, i):
    record = dict(self._source[i])
    record["frames"] = [b"\x89PNG not an image"] + list(record["frames"][1:])
    return record


def test_an_undecodable_frame_names_its_shard(synthetic_small):
  tfds_source = sources.builder(NAME, str(synthetic_small)).as_data_source("train")
  rebuild = f"me-fomm prepare --dataset={NAME} --data_dir={synthetic_small} --overwrite"
  source = sources.ClipSource(_BadFrames(tfds_source), "synthetic_me/small_64", "train", rebuild)
  with pytest.raises(shards.DamagedShardError, match="its frames: stored frame is not") as e:
    clip_lib.Clip.from_record(source[0])
  _assert_names_shard_and_rebuild(e.value, _shard(synthetic_small), synthetic_small)
  assert str(e.value).count("rebuild") == 1
  # A training pair decodes two frames: frame 0 is among them for some draw.
  transform = pipeline.PairTransform(pipeline.as_augment_config(False))
  import numpy as np

  with pytest.raises(shards.DamagedShardError, match="frames .* and"):
    for seed in range(50):
      transform(source[0], np.random.default_rng(seed))
  # A record from elsewhere (no origin) keeps its plain error.
  with pytest.raises(ValueError, match="not a decodable image") as e:
    clip_lib.Clip.from_record(dict(source[0]))
  assert not isinstance(e.value, shards.DamagedShardError)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_error_crosses_grain_threads_and_workers(data_dir, workers):
  shard = _shard(data_dir)
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  source = sources.load(NAME, str(data_dir), "train")
  # workers=0: Grain's prefetch threads read; 1: a worker process, its error pickled back.
  with pytest.raises(shards.DamagedShardError) as e:
    with pipeline.pair_loader(source, 2, worker_count=workers) as loader:
      next(loader)
  _assert_names_shard_and_rebuild(e.value, shard, data_dir)


def test_a_command_prints_one_line_and_exits_2(data_dir, tmp_path):
  shard = _shard(data_dir)
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "me_fomm.cli",
      "fit-au",
      f"--dataset={NAME}",
      f"--data_dir={data_dir}",
      f"--out={tmp_path / 'au.json'}",
    ],
    capture_output=True,
    text=True,
    env=dict(os.environ, JAX_PLATFORMS="cpu"),
    timeout=120,
  )
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2 and len(lines) == 1, out.stderr
  assert lines[0].startswith("me-fomm fit-au: error: record shard ")
  assert shard in lines[0] and "--overwrite" in lines[0]


def test_damaged_json_and_overwrite_rebuilds_only_that_version(data_dir):
  folder = data_dir / "synthetic_me" / "small_64" / "1.0.0"
  info = folder / "dataset_info.json"
  info.write_text(info.read_text()[:40])
  sibling = data_dir / "synthetic_me" / "small_128" / "1.0.0"
  sibling.mkdir(parents=True)
  (sibling / "keep").write_text("another config's build")
  with pytest.raises(shards.DamagedShardError, match="dataset_info.json is damaged") as e:
    sources.load(NAME, str(data_dir), "train")
  assert f"--data_dir={data_dir} --overwrite" in str(e.value)
  # Without --overwrite prepare says the same; with it the version folder is built anew.
  with pytest.raises(shards.DamagedShardError, match="--overwrite"):
    sources.prepare(NAME, str(data_dir))
  b, report, built_now = sources.prepare(NAME, str(data_dir), overwrite=True)
  assert built_now and report["written"] == {"train": 6, "test": 3}
  assert str(b.data_dir) == str(folder) and (sibling / "keep").exists()
  assert len(_read_all(data_dir)) == 6
  # A corpus without --manual_dir: refused before its old build is removed.
  casme2 = data_dir / "casme2" / "64" / "1.0.0"
  casme2.mkdir(parents=True)
  with pytest.raises(ValueError, match="manual_dir"):
    sources.prepare("casme2", str(data_dir), image_size=64, overwrite=True)
  assert casme2.exists()
