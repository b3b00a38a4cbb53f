"""Session-scoped pytest fixtures shared by the builder tests (datasets/) and the pipeline
tests (tests/data/): fake corpora and small builds, made once per test session (per xdist
worker) under pytest's base temp folder and reused when already built.

Import them into a conftest.py: `from me_fomm_datasets.common.testing import *`.
"""

from __future__ import annotations

import os

import pytest
import tensorflow_datasets as tfds

__all__ = ["fake_corpora", "synthetic_small", "build", "built", "records"]


def build(cls, config, data_dir, manual_dir=None, **kwargs):
  """A prepared builder (built unless an earlier test already built it in data_dir)."""
  b = cls(data_dir=os.fspath(data_dir), config=config, **kwargs)
  if not b.is_prepared():
    dl = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None
    b.download_and_prepare(download_config=dl)
  return b


def built(cls, config: str, name: str):
  """A module-scoped fixture `name`: `cls` built with `config` from the fake corpora."""

  @pytest.fixture(scope="module", name=name)
  def fixture(fake_corpora, tmp_path_factory):
    return build(cls, config, tmp_path_factory.mktemp(name), fake_corpora)

  return fixture


def records(builder, split: str = "train", key=("clip_id",)) -> dict:
  """{clip_id: record} of a built split (the key joins the named text fields: ('corpus',
  'clip_id') gives (corpus, clip_id) tuples), to look clips up by name in assertions."""
  ds = builder.as_data_source(split)
  out = {}
  for i in range(len(ds)):
    rec = ds[i]
    names = tuple(rec[k].decode() for k in key)
    out[names if len(names) > 1 else names[0]] = rec
  return out


def _shared(tmp_path_factory, name: str):
  path = tmp_path_factory.getbasetemp() / "me_fomm_data" / name
  path.mkdir(parents=True, exist_ok=True)
  return path


@pytest.fixture(scope="session")
def fake_corpora(tmp_path_factory):
  """One folder with fake CASME II (with bad clips), SAMM (with a missing folder), SMIC
  (HS + VIS) and custom clips, laid out as the real downloads."""
  root = _shared(tmp_path_factory, "corpora")
  done = root / ".done"
  if not done.exists():
    from me_fomm_datasets.casme2 import fake_data as casme2_fake
    from me_fomm_datasets.custom import fake_data as custom_fake
    from me_fomm_datasets.samm import fake_data as samm_fake
    from me_fomm_datasets.smic import fake_data as smic_fake

    casme2_fake.make(os.fspath(root), bad=True)
    samm_fake.make(os.fspath(root), bad=True)
    smic_fake.make(os.fspath(root))
    custom_fake.make(os.fspath(root / "custom"))
    done.write_text("ok")
  return root


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory):
  """data_dir holding synthetic_me/small_64 (6 train + 3 test clips of 8-10 frames)."""
  from me_fomm_datasets.synthetic_me import synthetic_me_dataset_builder as S

  data_dir = _shared(tmp_path_factory, "built")
  build(S.SyntheticMe, "small_64", data_dir)
  return data_dir
