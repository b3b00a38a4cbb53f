"""Reading the corpora's coding spreadsheets (xlsx) with openpyxl.

The header row is found by its column names rather than assumed: CASME II's sits on row 1,
SAMM's on row 14 below a title block. Column names are compared case- and space-blind
("Onset Frame" == "OnsetFrame").
"""

from __future__ import annotations

import glob
import os
from typing import Sequence


def norm(name) -> str:
  return "".join(str(name).lower().split()) if name is not None else ""


def find_file(root: str, patterns: Sequence[str], what: str, instructions: str = "") -> str:
  """The one file matching a glob pattern in `root` or one folder below; clear error if none."""
  hits = []
  for pattern in patterns:
    hits += glob.glob(os.path.join(root, pattern)) + glob.glob(os.path.join(root, "*", pattern))
  hits = sorted(set(h for h in hits if not os.path.basename(h).startswith("~$")))
  if not hits:
    raise FileNotFoundError(
      f"no {what} ({' or '.join(patterns)}) in {root} or its subfolders."
      + (f"\n{instructions}" if instructions else "")
    )
  return hits[0]


def read_rows(path: str, required: Sequence[str], search_rows: int = 40) -> list[tuple[int, dict]]:
  """[(spreadsheet row number, {normalised column: value})] below the header row.

  Raises ValueError naming the file and the columns found if no row within the first
  `search_rows` holds every required column. Entirely empty rows are skipped.
  """
  import openpyxl

  try:
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
  except Exception as e:  # openpyxl raises several types for damaged files
    raise ValueError(f"cannot read spreadsheet {path}: {e}") from None
  try:
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
  finally:
    wb.close()
  want = [norm(c) for c in required]
  for r, row in enumerate(rows[:search_rows]):
    names = [norm(c) for c in row]
    if all(w in names for w in want):
      header, header_row = names, r
      break
  else:
    first = [c for c in (rows[0] if rows else ()) if c is not None]
    raise ValueError(
      f"spreadsheet {path}: no header row with columns {list(required)} in its "
      f"first {search_rows} rows (first row: {first}). Is it the right file?"
    )
  out = []
  for r, row in enumerate(rows[header_row + 1 :], start=header_row + 2):
    if all(v is None or str(v).strip() == "" for v in row):
      continue
    out.append((r, {h: v for h, v in zip(header, row) if h}))
  return out


def as_int(value) -> int | None:
  """An annotated frame number, or None for empty cells, '/', '-', '-1' or text."""
  if value is None or isinstance(value, bool):
    return None
  try:
    number = float(str(value).strip())
  except ValueError:
    return None
  if number != number or number < 0:  # NaN, -1 ("not coded")
    return None
  return int(number)


def as_text(value) -> str:
  if value is None:
    return ""
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  return str(value).strip()
