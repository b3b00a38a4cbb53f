"""Dataset names, configs, not-built errors, folds and the MEGC generation sources."""

import pytest

from me_fomm.data import folds, megc_sources, sources


def test_resolve_config():
  assert sources.resolve_config("casme2").name == "256"
  assert sources.resolve_config("casme2", image_size=64).name == "64"
  assert sources.resolve_config("smic/hs").name == "hs"
  assert sources.resolve_config("smic/nir", image_size=128, grayscale=True).name == "nir_128_gray"
  assert sources.resolve_config("smic/hs_64").resolution == 64
  assert sources.resolve_config("synthetic_me").name == "demo_64"
  assert sources.resolve_config("synthetic_me/small").name == "small_64"
  assert sources.resolve_config("synthetic_me/full", image_size=128).name == "full_128"
  assert sources.resolve_config("megc", margin=0.35).name == "256_m35"
  assert sources.resolve_config("smic/hs", image_size=64, frame_format="jpeg").name == "hs_64_jpg"
  assert sources.resolve_config("synthetic_me", frame_format="jpeg").name == "demo_64_jpg"
  with pytest.raises(ValueError, match="unknown dataset"):
    sources.resolve_config("casme3")
  with pytest.raises(ValueError, match="variants"):
    sources.resolve_config("smic/uv")


def test_load_unbuilt_says_how_to_build(tmp_path):
  with pytest.raises(FileNotFoundError, match="me-fomm prepare --dataset=casme2"):
    sources.load("casme2", tmp_path, "train", image_size=64)


def test_load_wrong_split(synthetic_small):
  with pytest.raises(ValueError, match="splits"):
    sources.load("synthetic_me/small", synthetic_small, "validation")
  test = sources.load("synthetic_me/small", synthetic_small, "test")
  assert len(test) == 3 and "small_64" in repr(test)
  meta = sources.metadata(test)
  assert all(m["subject"] == "grace_hopper" for m in meta)


def test_loso_folds():
  clips = [
    {"subject": s, "corpus": c}
    for s, c in [("sub01", "casme2"), ("006", "samm"), ("sub01", "casme2"), ("sub01", "samm")]
  ]
  subjects = [folds.subject_key(c) for c in clips]
  fs = list(folds.loso_folds(subjects))
  assert [f.subject for f in fs] == ["casme2/sub01", "samm/006", "samm/sub01"]
  assert fs[0].test == [0, 2] and fs[0].train == [1, 3]
  for f in fs:
    assert sorted(f.train + f.test) == [0, 1, 2, 3]
  assert folds.subject_key({"subject": "casme2/sub01", "corpus": "casme2"}) == "casme2/sub01"
  with pytest.raises(ValueError, match="at least 2"):
    list(folds.loso_folds(["a", "a"]))
  sub = sources.Subset(clips, fs[0].train)
  assert len(sub) == 2 and sub[0] is clips[1]
  with pytest.raises(IndexError):
    sources.Subset(clips, [9])


def test_megc_generation_sources():
  src = [
    {"clip_id": c, "corpus": "casme2"}
    for c in ["sub01/EP01_13", "sub02/EP02_01f", "sub19/EP01_01f", "sub19/EP19_06f"]
  ]
  assert megc_sources.find_generation_sources(src, "casme2") == {
    "EP01_13": 0,
    "EP01_01f": 2,
    "EP19_06f": 3,
  }
  with pytest.raises(KeyError, match="EP01_13"):
    megc_sources.find_generation_sources(src[1:], "casme2")
  with pytest.raises(ValueError, match="several"):
    megc_sources.find_generation_sources(
      src + [{"clip_id": "sub09/EP01_13", "corpus": "casme2"}], "casme2"
    )
  assert megc_sources.GENERATION_SOURCES["samm"] == ("007_7_1", "022_3_3", "018_3_1")
  assert megc_sources.GENERATION_SOURCES["smic"] == ("s20_sur_01", "s3_po_05", "s11_ne_02")


def test_builders_register_their_tfds_names():
  import tensorflow_datasets as tfds

  for name in sources.BUILDERS:
    cls = sources.builder_class(name)
    assert tfds.builder_cls(name) is cls
    assert cls.MANUAL_DOWNLOAD_INSTRUCTIONS or name == "synthetic_me"
