"""smic: hs/vis/nir configs, class from the folder, no apex coding."""

import pytest
import tensorflow_datasets as tfds

from me_fomm_datasets.common.testing import build, records
from me_fomm_datasets.smic import smic_dataset_builder as S


def test_hs_and_vis(fake_corpora, tmp_path):
  hs = build(S.Smic, "hs_64", tmp_path, fake_corpora)
  clips = records(hs)
  assert set(clips) == {"s3_po_05", "s11_ne_02", "s20_sur_01"}  # non_micro ignored
  c = clips["s20_sur_01"]
  assert c["label"] == 2 and c["subject"] == b"s20" and c["fps"] == 100.0
  assert (c["onset"], c["apex"], c["offset"], bool(c["apex_estimated"])) == (0, 2, 5, True)
  assert list(clips["s11_ne_02"]["frame_numbers"]) == list(range(2000, 2006))
  vis = build(S.Smic, "vis_64", tmp_path, fake_corpora)
  v = vis.as_data_source("train")
  assert len(v) == 1 and v[0]["fps"] == 25.0


def test_missing_camera(fake_corpora, tmp_path):
  b = S.Smic(data_dir=str(tmp_path), config="nir_64")
  with pytest.raises(FileNotFoundError, match="NIR"):
    b.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(fake_corpora))
    )


def test_configs():
  names = {c.name for c in S.Smic.BUILDER_CONFIGS}
  assert {"hs", "vis", "nir", "hs_64", "nir_128_gray"} <= names
