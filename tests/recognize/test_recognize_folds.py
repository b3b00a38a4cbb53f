"""Leave-one-subject-out folds: no fold trains on its test subject's face or motion, recorded or
generated; the protocol on toy samples; which clip drives which face in `me-fomm augment`."""

import itertools

import numpy as np
import pytest

from me_fomm.recognize import augmentation, protocol
from me_fomm.recognize.fit import FitConfig
from me_fomm.recognize.samples import Samples

SUBJECTS = ("casme2/sub01", "casme2/sub02", "samm/006", "smic/s3")


def _samples(faces, motions, labels=None, seed=0):
  n = len(faces)
  rng = np.random.default_rng(seed)
  labels = np.arange(n) % 3 if labels is None else np.asarray(labels)
  x = rng.normal(0, 0.3, (n, 28, 28, 3)).astype(np.float32)
  for i, c in enumerate(labels):
    x[i, 4 + 8 * c : 10 + 8 * c, 8:20, c] += 1.0
  return Samples(
    features=x,
    labels=labels.astype(np.int32),
    subjects=list(faces),
    motion_subjects=list(motions),
    corpora=[f.split("/")[0] for f in faces],
    names=[f"{f}/clip{i}" for i, f in enumerate(faces)],
  )


def _recorded(per_subject=6):
  faces = [s for s in SUBJECTS for _ in range(per_subject)]
  return _samples(faces, faces)


def _generated():
  pairs = [(m, f) for m, f in itertools.product(SUBJECTS, SUBJECTS) if m != f]
  return _samples([f for _, f in pairs], [m for m, _ in pairs], seed=1)


def test_fold_masks_hold_out_face_and_motion():
  pool = Samples.concat(_recorded(), _generated())
  masks = protocol.fold_masks(pool, SUBJECTS)
  for s, mask in zip(SUBJECTS, masks):
    for n in range(len(pool)):
      involved = s in (pool.subjects[n], pool.motion_subjects[n])
      # Exactly the clips that neither show nor move the test subject train its fold.
      assert mask[n] == (not involved), (s, pool.subjects[n], pool.motion_subjects[n])
  names = protocol.fold_masks(pool, SUBJECTS[:1], [{pool.names[-1]}])
  assert not names[0, -1] and names[0, :-1].sum() == masks[0, :-1].sum()


def test_loso_with_and_without_generated_clips():
  recorded, generated = _recorded(), _generated()
  config = FitConfig(steps=40, batch_size=16, learning_rate=1e-2)
  runs = protocol.loso(recorded, recorded, config, augment=generated)
  assert set(runs) == {protocol.WITHOUT, protocol.WITH}
  pool = Samples.concat(recorded, generated)
  n_rec = len(recorded)
  for name, r in runs.items():
    assert r.held_out == sorted(SUBJECTS) and r.folds == 4
    assert r.masks.shape == (4, len(pool))
    for s, mask in zip(r.held_out, r.masks):
      trained = np.flatnonzero(mask)
      # No fold ever trains on a clip generated from its test subject's motion or onto its face.
      assert all(pool.subjects[n] != s and pool.motion_subjects[n] != s for n in trained)
      if name == protocol.WITHOUT:
        assert trained.max() < n_rec  # recorded clips only
      else:
        assert (trained >= n_rec).sum() == 6  # generated clips involving neither s (3 x 2)
    # Every recorded clip is predicted once, by the fold that held its subject out.
    assert len(r.predictions) == n_rec and r.scores["overall"]["clips"] == n_rec
    assert set(r.scores) == {"overall", "casme2", "samm", "smic"}
    assert r.scores["overall"]["uar"] > 0.8  # the toy classes are easy
  doc = runs[protocol.WITH].as_dict()
  assert doc["train_clips_per_fold"]["samm/006"] == 18 + 6
  assert {p["label"] for p in doc["predictions"]} == {"negative", "positive", "surprise"}


def test_a_fold_without_training_clips_is_refused():
  one = _samples(["smic/s3"] * 3, ["smic/s3"] * 3)
  with pytest.raises(ValueError, match="at least two subjects"):
    protocol.loso(one, one, FitConfig(steps=1))


def test_plan_targets_drives_other_subjects():
  subjects = ["a", "a", "b", "c", "c", "c", "d"]
  plan = augmentation.plan_targets(subjects, 2, seed=3)
  assert plan == augmentation.plan_targets(subjects, 2, seed=3)  # deterministic
  for i, targets in enumerate(plan):
    faces = [subjects[j] for j in targets]
    assert len(targets) == 2 and len(set(faces)) == 2 and subjects[i] not in faces
  # Fewer other subjects than asked: each of them once.
  plan = augmentation.plan_targets(["a", "b", "b"], 3)
  assert [sorted(subjects[j] for j in t) for t in plan[:1]] == [["b"]]
  with pytest.raises(ValueError, match="two subjects"):
    augmentation.plan_targets(["a", "a"], 1)
  with pytest.raises(ValueError, match="targets_per_clip"):
    augmentation.plan_targets(["a", "b"], 0)
