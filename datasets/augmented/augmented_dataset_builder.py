"""augmented: generated cross-identity clips, written by `me-fomm augment`.

Each clip is a corpus clip's motion transferred by a trained me_fomm model onto the onset frame of
another subject's clip. Besides the usual clip fields (`subject`/`corpus` are the *target's*: the face
shown) a record names whose motion it carries: `driving_subject` (a subject key as
`me_fomm.data.folds.subject_key` spells it, e.g. 'casme2/sub01'), `driving_clip_id`, `driving_corpus`,
and the target: `target_subject` (key) and `target_clip_id`. `label`, `emotion`, `action_units` and
`onset`/`apex`/`offset` are the driving clip's. `landmarks` are the target's onset landmarks moved by
the driving clip's landmark displacement (the motion the model was asked to transfer), not detected.

The manual folder is the staging folder `me-fomm augment` fills (`me_fomm.recognize.augmentation.
Staging`): `clips.json`, a list of one entry per clip (the record's text and index fields and the
PROVENANCE fields above, plus `file`), and per clip an `.npz` with `frames` uint8 (T, S, S, 3) and
`landmarks` float32 (T, 68, 2) in pixels of those frames. The command builds the dataset from it
and removes it.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow_datasets as tfds

from me_fomm.data import images
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import features as F
from me_fomm_datasets.common import preprocess as P

INDEX = "clips.json"
# Text fields an augmented record adds to the common layout.
PROVENANCE = (
  "driving_subject",
  "driving_clip_id",
  "driving_corpus",
  "target_subject",
  "target_clip_id",
)
INSTRUCTIONS = """\
This dataset is written by `me-fomm augment --checkpoint=... --dataset=... --out=...`, which
generates the clips and builds it; its manual folder is that command's staging folder.
"""


def features() -> tfds.features.FeaturesDict:
  fields = dict(F.clip_features().items())
  fields.update({k: tfds.features.Text() for k in PROVENANCE})
  return tfds.features.FeaturesDict(fields)


def read_index(folder: str) -> list:
  path = os.path.join(folder, INDEX)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"augmented: no {INDEX} in {folder}.\n{INSTRUCTIONS}")
  with open(path) as f:
    return json.load(f)


class Augmented(B.ClipBuilder):
  """Generated cross-identity clips with their provenance (see module doc)."""

  name = "augmented"
  CORPUS = ""  # per clip (the target's)
  DESCRIPTION = __doc__
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  BUILDER_CONFIGS = B.standard_configs(grayscale=(False,))

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=features())

  def _clip_specs(self, manual_dir):
    specs = []
    for entry in read_index(manual_dir):
      specs.append(
        P.ClipSpec(
          clip_id=entry["clip_id"],
          subject=entry["subject"],
          corpus=entry["corpus"],
          emotion=entry.get("emotion", ""),
          label=entry["label"],
          action_units=entry.get("action_units", ""),
          fps=float(entry.get("fps", 25.0)),
          where=os.path.join(manual_dir, entry["file"]),
          extra=entry,
        )
      )
    return {"train": specs}

  def _process(self, spec: P.ClipSpec) -> dict:
    e = spec.extra
    with np.load(spec.where) as data:
      frames, landmarks = data["frames"], data["landmarks"].astype(np.float32)
    options = self.process_options
    return P.clip_record(
      spec,
      [P.encode_output(f, options) for f in frames],
      images.rescale_points(landmarks, frames.shape[1], options.resolution).astype(np.float32),
      e["onset"],
      e["apex"],
      e["offset"],
      apex_estimated=e.get("apex_estimated", False),
      **{k: str(e[k]) for k in PROVENANCE},
    )


Builder = Augmented
