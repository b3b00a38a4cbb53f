"""custom: a video and a frame folder, with and without clips.csv annotations."""

import pytest

from me_fomm_datasets.common.testing import build, records
from me_fomm_datasets.custom import custom_dataset_builder as C


def test_video_and_folder(fake_corpora, tmp_path):
  b = build(C.Custom, "64", tmp_path, fake_corpora / "custom")
  clips = records(b)
  assert set(clips) == {"alice/smile_01", "bob_02"}
  video = clips["alice/smile_01"]
  assert len(video["frames"]) == 6 and video["fps"] == 25.0 and video["label"] == 1
  assert (video["onset"], video["apex"], video["offset"]) == (0, 3, 5)
  assert not video["apex_estimated"]
  folder = clips["bob_02"]
  assert folder["subject"] == b"bob_02" and folder["apex_estimated"] and folder["label"] == 3


def test_empty_folder(tmp_path):
  with pytest.raises(FileNotFoundError, match="no clips"):
    C.clip_specs(str(tmp_path))


def test_annotation_problems(tmp_path):
  from me_fomm_datasets.common import fake

  for i, f in enumerate(fake.blank_frames(2, (16, 16))):
    fake.write_image(str(tmp_path / "c1" / f"{i}.png"), f)
  (tmp_path / "clips.csv").write_text("clip_id,fps,onset\nc1,fast,0\nghost,25,x\n")
  notes = []
  specs = C.clip_specs(str(tmp_path), notes=notes)
  assert len(specs) == 1 and "fps 'fast'" in specs[0].problem
  assert notes and "ghost" in notes[0]
