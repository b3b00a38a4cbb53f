"""megc: the three-class composite of the fake CASME II, SAMM and SMIC-HS."""

from me_fomm.data import images
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common.testing import build, records
from me_fomm_datasets.megc import megc_dataset_builder as M


def test_composite(fake_corpora, tmp_path):
  b = build(M.Megc, "64_gray", tmp_path, fake_corpora)
  clips = records(b, key=("corpus", "clip_id"))
  # SAMM "Other" (022_3_3) is left out; CASME II repression is negative; SMIC keeps all.
  assert ("samm", "022_3_3") not in clips
  assert clips[("casme2", "sub03/EP19_06f")]["label"] == 0
  assert clips[("samm", "006_1_2")]["label"] == 0
  assert clips[("smic", "s3_po_05")]["label"] == 1
  assert clips[("casme2", "sub01/EP02_01f")]["subject"] == b"casme2/sub01"
  assert {c for c, _ in clips} == {"casme2", "samm", "smic"}
  assert all(int(c["label"]) in (0, 1, 2) for c in clips.values())
  frame = next(iter(clips.values()))["frames"][0]
  f = images.decode_frame(frame)
  assert (f[..., 0] == f[..., 2]).all()  # grayscale-as-3-channels config
  report = B.read_report(b)
  assert "samm: 4 of 5 clips are in the MEGC2019 classes" in report["notes"]  # Other left out
  assert report["written"]["train"] == len(clips) == 10
