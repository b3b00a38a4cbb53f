"""`me-fomm augment` on a fake MEGC composite with a toy checkpoint, then `me-fomm recognize
--augment`: the generated dataset loads with `sources.load`, records whose motion and face each clip
carries, and no fold trains on a clip of its test subject's motion or face. Also the recognition
protocol's folds on a corpus (`me_fomm.evaluate.recognition`), with a stand-in generator."""

import re

import jax
import numpy as np
import pytest

from me_fomm import checkpoint
from me_fomm.commands import augment, recognize
from me_fomm.commands.options import make
from me_fomm.data import sources
from me_fomm.data.folds import subject_key
from me_fomm.evaluate import recognition as R
from me_fomm.evaluate import runner
from me_fomm.model import build_models, init_variables
from me_fomm.recognize import protocol
from me_fomm.recognize.fit import FitConfig
from me_fomm_datasets.common.testing import build
from me_fomm_datasets.megc import megc_dataset_builder as M
from me_fomm_experiments.configs.demo import tiny_model


@pytest.fixture(scope="module")
def megc(fake_corpora, tmp_path_factory):
  """data_dir with the fake composite at 64 px: 10 clips of 9 subjects (CASME II, SAMM, SMIC)."""
  data_dir = tmp_path_factory.mktemp("megc")
  build(M.Megc, "64", data_dir, fake_corpora)
  return str(data_dir)


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory):
  cfg = tiny_model("tip24")
  folder = tmp_path_factory.mktemp("toy") / "checkpoint"
  checkpoint.save_models(folder, init_variables(build_models(cfg), cfg, jax.random.PRNGKey(0)), cfg)
  return str(folder)


def test_augment_then_recognize(megc, toy_checkpoint, tmp_path, capsys):
  out = tmp_path / "augmented"
  opts = dict(checkpoint=toy_checkpoint, dataset="megc", data_dir=megc, image_size=64)
  result = augment.run(make(augment.OPTIONS, targets_per_clip=2, out=str(out), **opts), False)
  assert result["clips"] == 20 and result["dataset"] == "augmented/64"
  assert not (out / "staging").exists()

  corpus = sources.load("megc", megc, "train", image_size=64)
  by_clip = {(corpus[i]["corpus"], corpus[i]["clip_id"]): corpus[i] for i in range(len(corpus))}
  generated = sources.load("augmented/64", str(out), "train")
  assert len(generated) == 20
  for i in range(len(generated)):
    rec = generated[i]
    driving = by_clip[(rec["driving_corpus"], rec["driving_clip_id"])]
    assert rec["driving_subject"] == subject_key(driving) != rec["target_subject"]
    assert rec["target_subject"] == subject_key(rec)  # the face shown is the target's
    assert rec["label"] == driving["label"] and rec["onset"] == driving["onset"]
    assert len(rec["frames"]) == len(driving["frames"]) and rec["landmarks"].shape[1:] == (68, 2)

  rec_opts = make(
    recognize.OPTIONS,
    dataset="megc",
    data_dir=megc,
    image_size=64,
    augment=str(out),
    out=str(tmp_path / "recognize"),
    steps=20,
  )
  result = recognize.run(rec_opts, progress=False)
  capsys.readouterr()  # TFDS prints while building
  # No fold trains on a clip generated from its test subject's motion or onto its test subject's
  # face (nor, of course, on the test subject's own clips).
  runs = result["runs"]
  for r in runs.values():
    for s, mask in zip(r.held_out, r.masks):
      for n in np.flatnonzero(mask):
        assert s not in (r.pool_subjects[n], r.pool_motion_subjects[n])
  assert len(runs[protocol.WITH].pool_subjects) == 10 + 20
  train_clips = {name: sum(r.train_clips.values()) for name, r in runs.items()}
  assert train_clips[protocol.WITH] > train_clips[protocol.WITHOUT]
  recognize.show(result)
  printed = capsys.readouterr().out.splitlines()
  assert "recorded clips" in printed[0] and "+ generated clips" in printed[0]
  assert "published STSTNet" in printed[0]
  rows = [line.split()[0] for line in printed[2:6]]
  assert rows == ["composite", "smic", "casme2", "samm"]
  assert re.fullmatch(r"UF1 \d\.\d{4} UAR \d\.\d{4}", printed[-1])

  with pytest.raises(ValueError, match="expected one augmented dataset"):
    recognize.run(make(recognize.OPTIONS, **dict(rec_opts, augment=megc, overwrite=True)), False)
  with pytest.raises(ValueError, match="targets_per_clip"):
    augment.run(make(augment.OPTIONS, targets_per_clip=0, out=str(tmp_path / "x"), **opts), False)


def test_recognition_protocol_folds_on_a_corpus(megc):
  clips = runner.select_clips(sources.load("megc", megc, "train", image_size=64))
  cfg = tiny_model("tip24")
  pairs = runner.cross_identity_pairs(runner.prepare_clips(clips, cfg), cfg)
  setup = R.setup_from_source(
    sources.load("megc", megc, "train", image_size=64), fit=FitConfig(steps=20)
  )
  # A stand-in generator that returns the driving frames: the generated row must equal the
  # driving row (the ceiling on a corpus), which checks the plumbing without a model.
  summary = R.score_recognition(pairs, lambda case: case.driving.astype(np.float32) / 255, setup)
  assert set(summary["rows"]) == {"model", "driving", "copy_target"}
  assert summary["ceiling"] == "driving" and summary["cases"] == len(pairs) == 10
  assert summary["rows"]["model"]["confusion"] == summary["rows"]["driving"]["confusion"]
  # One fold per driving subject, trained on every clip of the other subjects.
  subjects = [subject_key({"subject": c.subject, "corpus": c.corpus}) for c in clips]
  assert summary["folds"] == len(set(subjects)) == 9
  for s, n in summary["train_clips_per_fold"].items():
    assert n == sum(t != s for t in subjects)
  assert "recognition (10 clips, 9 folds)" in R.format_summary(summary)
