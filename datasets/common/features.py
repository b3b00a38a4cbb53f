"""The one feature layout every micro-expression builder writes (see DESIGN.md, Data).

Kept in one place so that CASME II, SAMM, SMIC, MEGC, the synthetic corpus and custom clips
are read by the same Grain pipeline. Only feature types that TFDS can encode and decode
without TensorFlow are used (`Tensor`, `Scalar`, `Text`, `ClassLabel`, `Sequence` of bytes
tensors) together with `file_format='array_record'`. The class names and the action-unit
vocabulary are the library's (`me_fomm.data.vocab`): `label` is an index into LABELS and
`au_multi_hot` has one slot per AU_VOCAB entry.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from me_fomm.data.vocab import AU_VOCAB, LABELS

NUM_LANDMARKS = 68


def _bytes_sequence():
  # A variable-length list of encoded images. `Image`/`Video` features need TensorFlow to
  # encode/decode; a Sequence of scalar object (bytes) tensors round-trips without it, and
  # the loader then decodes only the frames it samples.
  return tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_))


def clip_features(ground_truth: bool = False) -> tfds.features.FeaturesDict:
  """FeaturesDict of one clip. `ground_truth` adds synthetic_me's identity and truth frames."""
  feats = {
    "frames": _bytes_sequence(),
    "landmarks": tfds.features.Tensor(shape=(None, NUM_LANDMARKS, 2), dtype=np.float32),
    "landmark_borrowed": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
    "frame_numbers": tfds.features.Tensor(shape=(None,), dtype=np.int32),
    "crop_box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
    "subject": tfds.features.Text(),
    "clip_id": tfds.features.Text(),
    "corpus": tfds.features.Text(),
    "emotion": tfds.features.Text(),
    "label": tfds.features.ClassLabel(names=LABELS),
    "action_units": tfds.features.Text(),
    "au_multi_hot": tfds.features.Tensor(shape=(len(AU_VOCAB),), dtype=np.bool_),
    "onset": tfds.features.Scalar(dtype=np.int32),
    "apex": tfds.features.Scalar(dtype=np.int32),
    "offset": tfds.features.Scalar(dtype=np.int32),
    "apex_estimated": tfds.features.Scalar(dtype=np.bool_),
    "fps": tfds.features.Scalar(dtype=np.float32),
  }
  if ground_truth:
    feats["identity"] = tfds.features.Text()
    feats["ground_truth_identity"] = tfds.features.Text()
    feats["ground_truth_frames"] = _bytes_sequence()
    feats["ground_truth_landmarks"] = tfds.features.Tensor(
      shape=(None, NUM_LANDMARKS, 2), dtype=np.float32
    )
  return tfds.features.FeaturesDict(feats)
