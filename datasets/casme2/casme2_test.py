"""casme2: fake download with the real layout and quirks, built and read back."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from me_fomm.data import images
from me_fomm_datasets.casme2 import casme2_dataset_builder as C
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import preprocess as P
from me_fomm_datasets.common.testing import build, built, records

casme2 = built(C.Casme2, "64", "casme2")


def test_builds_good_clips_and_skips_bad_ones(casme2):
  report = B.read_report(casme2)
  assert report["written"] == {"train": 4}
  assert report["borrowed_frames"] == 1 and report["frames"] == 24
  reasons = {clip: why for _, clip, why in report["skipped"]}
  assert set(reasons) == {"sub04/EP05_01", "sub05/EP06_02", "sub06/EP07_07", "sub01/EP02_01f"}
  assert "no face found" in reasons["sub04/EP05_01"]
  assert (
    "img3.jpg" in reasons["sub05/EP06_02"] and "not a readable image" in reasons["sub05/EP06_02"]
  )
  assert "does not exist" in reasons["sub06/EP07_07"] and "row 8" in reasons["sub06/EP07_07"]
  assert "duplicated row" in reasons["sub01/EP02_01f"]


def test_clip_fields(casme2):
  clips = records(casme2)
  c = clips["sub01/EP02_01f"]  # frames img46..img51, onset 46, apex 48, offset 51
  assert list(c["frame_numbers"]) == [46, 47, 48, 49, 50, 51]
  assert (c["onset"], c["apex"], c["offset"], bool(c["apex_estimated"])) == (0, 2, 5, False)
  assert c["subject"] == b"sub01" and c["corpus"] == b"casme2" and c["fps"] == 200.0
  assert c["label"] == 1 and c["emotion"] == b"happiness"
  assert c["landmarks"].shape == (6, 68, 2)
  assert 0 < c["landmarks"][..., 0].mean() < 64 and 0 < c["landmarks"][..., 1].mean() < 64
  assert images.decode_frame(c["frames"][0]).shape == (64, 64, 3)
  # '/' and missing ApexFrame cells: the middle of onset and offset, flagged.
  slash, empty = clips["sub01/EP03_02"], clips["sub02/EP01_13"]
  assert (slash["onset"], slash["apex"], slash["offset"], bool(slash["apex_estimated"])) == (
    1,
    3,
    5,
    True,
  )
  assert bool(empty["apex_estimated"]) and empty["apex"] == 2
  assert clips["sub03/EP19_06f"]["label"] == 0  # repression -> negative
  borrowed = clips["sub03/EP19_06f"]
  assert borrowed["landmark_borrowed"].tolist() == [False, False, False, True, False, False]
  assert np.array_equal(borrowed["landmarks"][3], borrowed["landmarks"][2])
  assert not clips["sub01/EP02_01f"]["landmark_borrowed"].any()
  assert clips["sub02/EP01_13"]["action_units"] == b"L1+R2"
  assert clips["sub02/EP01_13"]["au_multi_hot"].sum() == 2


def test_strict_build_fails_and_leaves_nothing(fake_corpora, tmp_path):
  b = C.Casme2(data_dir=str(tmp_path), config="64", strict=True)
  with pytest.raises(P.ClipError, match="strict"):
    b.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(fake_corpora))
    )
  assert not C.Casme2(data_dir=str(tmp_path), config="64").is_prepared()
  leftovers = [p for p, _, files in os.walk(tmp_path) for f in files if "array_record" in f]
  assert not leftovers


def test_wrong_manual_dir(tmp_path):
  (tmp_path / "something").mkdir()
  b = C.Casme2(data_dir=str(tmp_path / "out"), config="64")
  with pytest.raises(FileNotFoundError, match="CASME2-RAW"):
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path)))


def test_missing_spreadsheet(tmp_path):
  (tmp_path / "CASME2-RAW" / "sub01").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match="coding spreadsheet"):
    C.clip_specs(str(tmp_path))


def test_subject_folder():
  assert C.subject_folder(1) == C.subject_folder("01") == C.subject_folder("sub01") == "sub01"
  with pytest.raises(ValueError):
    C.subject_folder("x")
  assert np.all([C.subject_folder(26.0) == "sub26"])


def test_worker_processes_build_the_same_records(fake_corpora, tmp_path, casme2):
  par = build(C.Casme2, "64", tmp_path, fake_corpora, workers=2)
  assert B.read_report(par) == B.read_report(casme2)
  a, b = casme2.as_data_source("train"), par.as_data_source("train")
  assert len(a) == len(b)
  for i in range(len(a)):
    x, y = a[i], b[i]
    assert x["clip_id"] == y["clip_id"] and x["frames"] == y["frames"]
    assert np.array_equal(x["landmarks"], y["landmarks"])


def test_row_with_a_bad_subject_is_a_problem_named_by_its_row(tmp_path):
  from me_fomm_datasets.common import fake

  (tmp_path / "CASME2-RAW").mkdir()
  fake.write_xlsx(
    str(tmp_path / "CASME2-coding-20140508.xlsx"),
    list(C.COLUMNS),
    [["x", "EP01_01", 1, 2, 3, "4", "disgust"]],
  )
  (spec,) = C.clip_specs(str(tmp_path))
  assert spec.clip_id == "row2/EP01_01" and spec.label == "other"
  assert (
    spec.problem
    == "CASME2-coding-20140508.xlsx row 2: subject 'x' is not a number; expected an integer."
  )
