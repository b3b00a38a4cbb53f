"""A fake CASME II download for tests (layout and spreadsheet quirks of the real one)."""

from __future__ import annotations

import os

from me_fomm_datasets.common import fake

# (subject int, filename, first frame number, frames, onset, apex cell, offset, AUs, emotion)
ROWS = [
  (1, "EP02_01f", 46, 6, 46, 48, 51, "12", "happiness"),
  (1, "EP03_02", 120, 6, 121, "/", 125, "4+7", "disgust"),  # apex not a number
  (2, "EP01_13", 10, 6, 10, None, 15, "L1+R2", "surprise"),  # apex missing
  (3, "EP19_06f", 300, 6, 300, 302, 305, "14", "repression"),
]


def make(root: str, bad: bool = False) -> str:
  """Writes <root>/CASME2-RAW/... and the coding xlsx; `bad` adds a clip with no face, a
  truncated frame, a row without folder and a duplicated row."""
  raw = os.path.join(root, "CASME2-RAW")
  rows = []
  for k, (subj, name, first, n, onset, apex, offset, aus, emo) in enumerate(ROWS):
    label = {"happiness": "positive", "surprise": "surprise"}.get(emo, "negative")
    frames = fake.clip_frames("grace_hopper" if subj % 2 else "astronaut", n, label, seed=k)
    if name == "EP19_06f":  # a frame where dlib finds no face: it borrows a neighbour's landmarks
      frames[3] = fake.blank_frames(1, frames[3].shape[:2])[0]
    for i, f in enumerate(frames):
      fake.write_image(os.path.join(raw, f"sub{subj:02d}", name, f"img{first + i}.jpg"), f)
    rows.append([f"{subj:02d}" if k == 0 else subj, name, 0, onset, apex, offset, aus, emo])
  if bad:
    for i, f in enumerate(fake.blank_frames(6)):
      fake.write_image(os.path.join(raw, "sub04", "EP05_01", f"img{i + 1}.jpg"), f)
    rows.append([4, "EP05_01", 0, 1, 3, 6, "4", "disgust"])  # no face
    frames = fake.clip_frames("astronaut", 6, "positive", seed=9)
    for i, f in enumerate(frames):
      fake.write_image(os.path.join(raw, "sub05", "EP06_02", f"img{i + 1}.jpg"), f)
    fake.truncate(os.path.join(raw, "sub05", "EP06_02", "img3.jpg"))
    rows.append([5, "EP06_02", 0, 1, 3, 6, "12", "happiness"])  # truncated frame
    rows.append([6, "EP07_07", 0, 1, 3, 6, "12", "happiness"])  # folder missing
    rows.append(list(rows[0]))  # duplicated row
  fake.write_xlsx(
    os.path.join(root, "CASME2-coding-20140508.xlsx"),
    [
      "Subject",
      "Filename",
      "Unnamed: 2",
      "OnsetFrame",
      "ApexFrame",
      "OffsetFrame",
      "Action Units",
      "Estimated Emotion",
    ],
    rows,
  )
  return root
