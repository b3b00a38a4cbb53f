"""SMIC (Li et al. 2013, IEEE FG): spontaneous micro-expressions filmed by three cameras,
configs `hs` (high speed, 100 fps, 164 clips of 16 subjects), `vis` (25 fps) and `nir`
(near infra-red, 25 fps).

Layout of the manual download (as shipped):
  SMIC_all_raw/HS/s3/micro/positive/s3_po_05/image000123.bmp ...
  SMIC_all_raw/VIS/s1/micro/negative/s1_ne_01/...   SMIC_all_raw/NIR/...
There is no apex annotation and no action-unit coding: the class is the folder name, the
onset is the first frame, the offset the last, and the apex their middle (flagged estimated).
`non_micro` folders are not micro-expressions and are not read.
"""

from __future__ import annotations

import os

from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import preprocess as P

CAMERAS = {"hs": ("HS", 100.0), "vis": ("VIS", 25.0), "nir": ("NIR", 25.0)}
CLASSES = ("negative", "positive", "surprise")

INSTRUCTIONS = """\
SMIC is licensed for research by the University of Oulu (https://www.oulu.fi/cmvs/node/41319).
After approval, extract it so that:
  <manual_dir>/SMIC_all_raw/HS/s3/micro/positive/s3_po_05/image000123.bmp ...
(and VIS/, NIR/ alike), then run:
  me-fomm prepare --dataset=smic/hs --manual_dir=<manual_dir> --data_dir=<data_dir>
"""


def find_camera_folder(manual_dir: str, camera: str) -> str:
  sub, _ = CAMERAS[camera]
  for cand in (
    os.path.join(manual_dir, "SMIC_all_raw", sub),
    os.path.join(manual_dir, sub),
    os.path.join(manual_dir, "SMIC", "SMIC_all_raw", sub),
  ):
    if os.path.isdir(cand):
      return cand
  raise FileNotFoundError(
    f"smic/{camera}: no SMIC_all_raw/{sub} folder in {manual_dir}.\n{INSTRUCTIONS}"
  )


def clip_specs(manual_dir: str, camera: str = "hs", corpus: str = "smic") -> list[P.ClipSpec]:
  root = find_camera_folder(manual_dir, camera)
  fps = CAMERAS[camera][1]
  specs = []
  subjects = sorted(
    (d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))), key=lambda d: (len(d), d)
  )
  for subject in subjects:
    micro = os.path.join(root, subject, "micro")
    if not os.path.isdir(micro):
      continue
    for cls in sorted(os.listdir(micro)):
      cls_dir = os.path.join(micro, cls)
      if not os.path.isdir(cls_dir):
        continue
      for clip in sorted(os.listdir(cls_dir)):
        folder = os.path.join(cls_dir, clip)
        if not os.path.isdir(folder):
          continue
        # The class is the folder name, already one of the three (negative, positive, surprise).
        spec = P.ClipSpec(clip, subject, corpus, emotion=cls.lower(), fps=fps, where=folder)
        if cls.lower() not in CLASSES:
          spec.problem = (
            f"clip {clip}: class folder {cls_dir} is not one of {CLASSES}; "
            "rename it or move the clip."
          )
        else:
          spec.list_frames(folder)
        specs.append(spec)
  if not specs:
    raise FileNotFoundError(
      f"smic/{camera}: no clips under {root}/<subject>/micro/<class>/; "
      f"is this the SMIC_all_raw folder?\n{INSTRUCTIONS}"
    )
  return specs


class Smic(B.ClipBuilder):
  """SMIC micro-expression clips (hs/vis/nir), cropped and landmarked (see module doc)."""

  name = "smic"
  CORPUS = "smic"
  DESCRIPTION = __doc__
  HOMEPAGE = "https://www.oulu.fi/cmvs/node/41319"
  CITATION = (
    "Li X, Pfister T, Huang X, Zhao G, Pietikainen M. A Spontaneous Micro-expression "
    "Database: Inducement, collection and baseline. IEEE FG 2013."
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  BUILDER_CONFIGS = B.standard_configs(variants=tuple(CAMERAS))
  DEFAULT_CONFIG_NAME = "hs"

  def _clip_specs(self, manual_dir):
    return {"train": clip_specs(manual_dir, self.builder_config.variant, self.CORPUS)}


Builder = Smic
