"""Shared preprocessing: spreadsheets, phases, frame files, clips without faces, build configs."""

import pytest

from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import fake, sheets
from me_fomm_datasets.common import preprocess as P


def test_sheet_header_search_and_cells(tmp_path):
  path = str(tmp_path / "s.xlsx")
  fake.write_xlsx(
    path,
    ["Subject", "Onset Frame", "Notes"],
    [[6, 10, None], [None, None, None], [7, "/", "x"]],
    header_row=14,
  )
  rows = sheets.read_rows(path, ["subject", "OnsetFrame"])
  assert [r for r, _ in rows] == [15, 17]
  assert rows[0][1]["onsetframe"] == 10
  assert sheets.as_int("/") is None and sheets.as_int(-1) is None and sheets.as_int("12") == 12
  assert sheets.as_int(12.0) == 12 and sheets.as_int(None) is None
  with pytest.raises(ValueError, match="Apex"):
    sheets.read_rows(path, ["Subject", "Apex"])


def _spec(numbers, onset=None, apex=None, offset=None):
  return P.ClipSpec(
    "c",
    "s",
    "x",
    "",
    "other",
    "",
    [""] * len(numbers),
    list(numbers),
    onset=onset,
    apex=apex,
    offset=offset,
  )


def test_phase_indices():
  assert P.phase_indices(_spec(range(10, 20), 11, 15, 18)) == (1, 5, 8, False)
  assert P.phase_indices(_spec(range(10, 20), 11, None, 18)) == (1, 4, 8, True)
  assert P.phase_indices(_spec(range(10, 20), 11, 19, 15)) == (1, 3, 5, True)  # apex after offset
  assert P.phase_indices(_spec(range(10, 20), None, None, None)) == (0, 4, 9, True)
  assert P.phase_indices(_spec(range(10, 20), 12, 14, 0)) == (2, 4, 9, False)  # offset 0: last


def test_read_frame_errors(tmp_path):
  with pytest.raises(P.ClipError, match="does not exist"):
    P.read_frame(str(tmp_path / "nope.jpg"), "c1")
  bad = tmp_path / "bad.jpg"
  bad.write_bytes(b"\xff\xd8\xff garbage")
  with pytest.raises(P.ClipError, match="c1.*not a readable image"):
    P.read_frame(str(bad), "c1")


def test_numbered_frames(tmp_path):
  for name in ["img10.jpg", "img9.jpg", "img100.jpg", "notes.txt"]:
    (tmp_path / name).write_bytes(b"")
  paths, nums = P.numbered_frames(str(tmp_path), (".jpg",))
  assert nums == [9, 10, 100] and paths[0].endswith("img9.jpg")
  (tmp_path / "x.jpg").write_bytes(b"")
  with pytest.raises(P.ClipError, match="no frame number"):
    P.numbered_frames(str(tmp_path), (".jpg",), "c")


class _NoFace:
  def detect(self, frame):
    return None


def test_clip_without_face_is_an_error():
  spec = _spec(range(3))
  with pytest.raises(P.ClipError, match="no face found in any of its 3 frames"):
    P.process_frames(spec, fake.blank_frames(3, (40, 40)), _NoFace(), P.ProcessOptions(64))


def test_config_names_and_checks():
  assert B.config_name() == "256" and B.config_name("hs") == "hs"
  assert B.config_name("hs", 64, True) == "hs_64_gray"
  assert B.config_name("", 128, margin=0.35) == "128_m35"
  with pytest.raises(ValueError, match="resolution"):
    B.make_config("", 7)
  with pytest.raises(ValueError, match="margin"):
    B.make_config("", 64, margin=-1)


def test_only_array_record(tmp_path):
  from me_fomm_datasets.casme2 import casme2_dataset_builder as C

  with pytest.raises(ValueError, match="array_record"):
    C.Casme2(data_dir=str(tmp_path), config="64", file_format="tfrecord")


def test_jpeg_frames_config():
  assert B.config_name("hs", 64, frame_format="jpeg") == "hs_64_jpg"
  assert B.make_config("", 128, frame_format="jpeg").frame_format == "jpeg"
  with pytest.raises(ValueError, match="frame_format"):
    B.make_config("", 128, frame_format="webp")


def test_frames_of_different_sizes_are_an_error(tmp_path):
  frames = fake.clip_frames("grace_hopper", 3)
  paths = []
  for i, f in enumerate(frames):
    if i == 2:
      f = f[:200]
    paths.append(str(tmp_path / f"img{i}.png"))
    fake.write_image(paths[-1], f)
  spec = P.ClipSpec("c", "s", "x", "", "other", "", paths, [0, 1, 2])
  from me_fomm.prior.landmarks import LandmarkDetector

  with pytest.raises(P.ClipError, match="img2.png is 320x200"):
    P.process_clip(spec, LandmarkDetector(), P.ProcessOptions(64))
