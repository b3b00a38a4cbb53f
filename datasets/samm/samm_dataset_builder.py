"""SAMM (Davison et al. 2018, IEEE Trans. Affective Computing 9(1)): 159 spontaneous
micro-movements of 32 subjects filmed in grayscale at 200 fps, 2040x1088.

Layout of the manual download (as shipped):
  SAMM/006/006_1_2/006_05562.jpg ...        (the last number is the absolute frame number)
  SAMM_Micro_FACS_Codes_v2.xlsx             (a title block; the header sits on row 14:
                                             Subject, Filename, Inducement Code, Onset Frame,
                                             Apex Frame, Offset Frame, Duration, Type,
                                             Action Units, Notes, Estimated Emotion,
                                             Objective Classes)
Frames are grayscale; they are stored as gray PNG and decode to 3 equal channels.
"""

from __future__ import annotations

import os

from me_fomm_datasets.common import coded, sheets
from me_fomm_datasets.common import preprocess as P

SHEET_PATTERNS = ("SAMM_Micro_FACS_Codes*.xlsx", "SAMM*FACS*.xlsx")
COLUMNS = (
  "Subject",
  "Filename",
  "Onset Frame",
  "Apex Frame",
  "Offset Frame",
  "Action Units",
  "Estimated Emotion",
)
FPS = 200.0

INSTRUCTIONS = """\
SAMM is licensed for research by Manchester Metropolitan University
(http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php). After approval, extract it so that:
  <manual_dir>/SAMM/006/006_1_2/006_05562.jpg ...
  <manual_dir>/SAMM_Micro_FACS_Codes_v2.xlsx
then run: me-fomm prepare --dataset=samm --manual_dir=<manual_dir> --data_dir=<data_dir>
"""


def find_samm_folder(manual_dir: str) -> str:
  for cand in (os.path.join(manual_dir, "SAMM"), os.path.join(manual_dir, "SAMM", "SAMM")):
    if os.path.isdir(cand) and any(n.isdigit() for n in os.listdir(cand)):
      return cand
  raise FileNotFoundError(
    f"samm: no SAMM folder with subject folders (006, 007, ...) in {manual_dir}.\n{INSTRUCTIONS}"
  )


def subject_folder(value) -> str:
  """Sheet subject (6, '006') -> folder name '006'."""
  text = sheets.as_text(value)
  if not text.isdigit():
    raise ValueError(f"subject {value!r} is not a number; expected e.g. 006")
  return f"{int(text):03d}"


SHEET = coded.Sheet(
  patterns=SHEET_PATTERNS,
  what="SAMM FACS coding spreadsheet",
  columns=COLUMNS,
  fps=FPS,
  instructions=INSTRUCTIONS,
  frames_root=find_samm_folder,
  subject_folder=subject_folder,
)


def clip_specs(manual_dir: str, corpus: str = "samm") -> list[P.ClipSpec]:
  """ClipSpecs of every coded clip; defects become `problem`s (skipped or strict error)."""
  return coded.clip_specs(manual_dir, SHEET, corpus)


class Samm(coded.CodedBuilder):
  """SAMM micro-movement clips, cropped and landmarked (see module doc)."""

  name = "samm"
  CORPUS = "samm"
  DESCRIPTION = __doc__
  HOMEPAGE = "http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php"
  CITATION = (
    "Davison AK, Lansley C, Costen N, Tan K, Yap MH. SAMM: A Spontaneous "
    "Micro-Facial Movement Dataset. IEEE Trans. Affective Computing 2018."
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  SHEET = SHEET


Builder = Samm
