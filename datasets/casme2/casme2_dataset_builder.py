"""CASME II (Yan et al. 2014, PLoS ONE 9(1): e86041): 255 spontaneous micro-expressions of 26
subjects filmed at 200 fps, coded with onset/apex/offset frames, action units and emotion.

Layout of the manual download (as shipped):
  CASME2-RAW/sub01/EP02_01f/img46.jpg ...     (N in imgN is the absolute frame number)
  CASME2-coding-20140508.xlsx                 (Subject, Filename, OnsetFrame, ApexFrame,
                                               OffsetFrame, Action Units, Estimated Emotion)
Subject is an integer in the sheet and `sub%02d` as a folder. Some ApexFrame cells are
empty or '/': the apex is then the middle of onset and offset and `apex_estimated` is set.
"""

from __future__ import annotations

import os

from me_fomm_datasets.common import coded, sheets
from me_fomm_datasets.common import preprocess as P

RAW_FOLDERS = ("CASME2-RAW", "CASME2_RAW", "CASME2_RAW_selected", "CASME2-RAW-selected")
SHEET_PATTERNS = ("CASME2-coding*.xlsx", "CASME2_coding*.xlsx")
COLUMNS = (
  "Subject",
  "Filename",
  "OnsetFrame",
  "ApexFrame",
  "OffsetFrame",
  "Action Units",
  "Estimated Emotion",
)
FPS = 200.0

INSTRUCTIONS = """\
CASME II is licensed for research by the Institute of Psychology, Chinese Academy of
Sciences (http://casme.psych.ac.cn/casme/e2). After approval, download CASME2-RAW and the
coding spreadsheet and put them in one folder:
  <manual_dir>/CASME2-RAW/sub01/EP02_01f/img46.jpg ...
  <manual_dir>/CASME2-coding-20140508.xlsx
then run: me-fomm prepare --dataset=casme2 --manual_dir=<manual_dir> --data_dir=<data_dir>
"""


def find_raw_folder(manual_dir: str) -> str:
  for root in (manual_dir,) + tuple(
    os.path.join(manual_dir, d) for d in sorted(os.listdir(manual_dir))
  ):
    for name in RAW_FOLDERS:
      path = os.path.join(root, name)
      if os.path.isdir(path):
        return path
  raise FileNotFoundError(
    f"casme2: no {' / '.join(RAW_FOLDERS)} folder in {manual_dir}; is "
    f"--manual_dir the folder holding the extracted corpus?\n{INSTRUCTIONS}"
  )


def subject_folder(value) -> str:
  """Sheet subject (1, '1', '01', 'sub01') -> folder name 'sub01'."""
  text = sheets.as_text(value)
  digits = "".join(ch for ch in text if ch.isdigit())
  if not digits:
    raise ValueError(f"subject {value!r} is not a number; expected an integer")
  return f"sub{int(digits):02d}"


SHEET = coded.Sheet(
  patterns=SHEET_PATTERNS,
  what="CASME II coding spreadsheet",
  columns=COLUMNS,
  fps=FPS,
  instructions=INSTRUCTIONS,
  frames_root=find_raw_folder,
  subject_folder=subject_folder,
  subject_in_clip_id=True,  # file names repeat across subjects
)


def clip_specs(manual_dir: str, corpus: str = "casme2") -> list[P.ClipSpec]:
  """ClipSpecs of every coded clip; defects become `problem`s (skipped or strict error)."""
  return coded.clip_specs(manual_dir, SHEET, corpus)


class Casme2(coded.CodedBuilder):
  """CASME II micro-expression clips, cropped and landmarked (see module doc)."""

  name = "casme2"
  CORPUS = "casme2"
  DESCRIPTION = __doc__
  HOMEPAGE = "http://casme.psych.ac.cn/casme/e2"
  CITATION = (
    "Yan W-J, Li X, Wang S-J, Zhao G, Liu Y-J, Chen Y-H, Fu X. CASME II: An Improved "
    "Spontaneous Micro-Expression Database and the Baseline Evaluation. PLoS ONE 2014."
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  SHEET = SHEET


Builder = Casme2
