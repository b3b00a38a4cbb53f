"""samm: grayscale frames, FACS sheet with its header on row 14."""

import numpy as np
import pytest

from me_fomm.data import images
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common.testing import built, records
from me_fomm_datasets.samm import samm_dataset_builder as S

samm = built(S.Samm, "64", "samm")


def test_build_and_read_back(samm):
  report = B.read_report(samm)
  assert report["written"] == {"train": 4}
  assert [s[1] for s in report["skipped"]] == ["009_2_1"]
  assert "row 19" in report["skipped"][0][2]  # header on 14, fifth data row
  clips = records(samm)
  assert set(clips) == {"006_1_2", "007_7_1", "018_3_1", "022_3_3"}
  c = clips["007_7_1"]
  assert c["subject"] == b"007" and c["label"] == 1 and c["fps"] == 200.0
  assert (c["onset"], c["apex"], c["offset"]) == (0, 3, 5)
  frame = images.decode_frame(c["frames"][2])
  assert frame.shape == (64, 64, 3)
  assert np.array_equal(frame[..., 0], frame[..., 1])  # gray decoded to 3 equal channels
  assert bool(clips["018_3_1"]["apex_estimated"])  # Apex Frame -1
  assert clips["022_3_3"]["label"] == 3  # "Other" stays other in SAMM itself
  assert clips["006_1_2"]["label"] == 0 and clips["006_1_2"]["emotion"] == b"anger"


def test_header_must_exist(tmp_path):
  from me_fomm_datasets.common import fake

  (tmp_path / "SAMM" / "006").mkdir(parents=True)
  fake.write_xlsx(str(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"), ["Subject", "File"], [[6, "x"]])
  with pytest.raises(ValueError, match="no header row"):
    S.clip_specs(str(tmp_path))


def test_row_with_a_bad_subject_is_a_problem_named_by_its_file(tmp_path):
  from me_fomm_datasets.common import fake

  (tmp_path / "SAMM" / "006").mkdir(parents=True)
  fake.write_xlsx(
    str(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"),
    list(S.COLUMNS),
    [["six", "006_1_2", 1, 2, 3, "4", "Anger"], ["?", None, 1, 2, 3, "4", "Anger"]],
  )
  specs = S.clip_specs(str(tmp_path))
  assert [s.clip_id for s in specs] == ["006_1_2", "row3"]
  assert specs[0].problem.endswith("subject 'six' is not a number; expected e.g. 006.")
