"""Clips of a FACS-coded corpus (CASME II, SAMM): one spreadsheet row per clip, a folder of
numbered frames per clip under `<frames root>/<subject folder>/<filename>`.

The two corpora differ only in their sheet (file name, header, column spelling) and in how a
subject is written (`Sheet`); every row becomes a ClipSpec the same way. A defect of a row (a
subject that is not a number, an empty Filename cell, a missing folder) becomes the spec's
`problem`, so the build skips and reports the clip instead of stopping.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import preprocess as P
from me_fomm_datasets.common import sheets


@dataclasses.dataclass(frozen=True)
class Sheet:
  """How a corpus's coding spreadsheet and frame folders are laid out."""

  patterns: tuple  # glob patterns of the spreadsheet's file name
  what: str  # the spreadsheet, for messages ("CASME II coding spreadsheet")
  columns: tuple  # column names the header row must hold (compared case- and space-blind)
  fps: float
  instructions: str  # how to get the corpus, appended to "not found" errors
  # manual_dir -> the folder holding the subject folders; FileNotFoundError if there is none.
  frames_root: Callable[[str], str]
  # Sheet cell -> subject folder name; ValueError with a message saying what was expected.
  subject_folder: Callable[[object], str]
  # True: a clip id is `subject/filename` (CASME II reuses file names across subjects).
  subject_in_clip_id: bool = False


def clip_specs(manual_dir: str, sheet: Sheet, corpus: str) -> list[P.ClipSpec]:
  """ClipSpecs of every coded row of the corpus's spreadsheet found in `manual_dir`."""
  frames_root = sheet.frames_root(manual_dir)
  path = sheets.find_file(manual_dir, sheet.patterns, sheet.what, sheet.instructions)
  name = os.path.basename(path)
  specs = []
  for row_number, row in sheets.read_rows(path, sheet.columns):
    where = f"{name} row {row_number}"
    filename = sheets.as_text(row["filename"])
    try:
      subject = sheet.subject_folder(row["subject"])
    except ValueError as e:
      # The row number stands in for the subject the id would carry.
      clip_id = f"row{row_number}/{filename}" if sheet.subject_in_clip_id else None
      specs.append(
        P.ClipSpec(
          clip_id or filename or f"row{row_number}",
          "",
          corpus,
          where=where,
          problem=f"{where}: {e}.",
        )
      )
      continue
    specs.append(
      row_spec(
        row,
        clip_id=f"{subject}/{filename}" if sheet.subject_in_clip_id else filename,
        subject=subject,
        corpus=corpus,
        fps=sheet.fps,
        where=where,
        folder=os.path.join(frames_root, subject, filename),
      )
    )
  return specs


def row_spec(
  row: dict, *, clip_id: str, subject: str, corpus: str, fps: float, where: str, folder: str
) -> P.ClipSpec:
  """A clip of a coding row: labels, phases and its frame files.

  `row` has the normalised column names (subject, filename, onsetframe, apexframe, offsetframe,
  actionunits, estimatedemotion).
  """
  spec = P.ClipSpec(
    clip_id=clip_id,
    subject=subject,
    corpus=corpus,
    emotion=sheets.as_text(row["estimatedemotion"]).lower(),
    action_units=sheets.as_text(row["actionunits"]),
    onset=sheets.as_int(row["onsetframe"]),
    apex=sheets.as_int(row["apexframe"]),
    offset=sheets.as_int(row["offsetframe"]),
    fps=fps,
    where=where,
  )
  if not sheets.as_text(row["filename"]):
    spec.problem = f"clip {clip_id} ({where}): the Filename cell is empty."
  elif not os.path.isdir(folder):
    spec.problem = (
      f"clip {clip_id} ({where}): folder {folder} does not exist; the row "
      "names a clip that is not in the download."
    )
  else:
    spec.list_frames(folder)
  return spec


class CodedBuilder(B.ClipBuilder, skip_registration=True):
  """A builder of a FACS-coded corpus: its clips are the rows of `SHEET` (one `train` split)."""

  SHEET: Sheet
  BUILDER_CONFIGS = B.standard_configs()

  def _clip_specs(self, manual_dir):
    return {"train": clip_specs(manual_dir, self.SHEET, self.CORPUS)}
