"""A fake SAMM download for tests: grayscale jpgs, FACS sheet with the header on row 14."""

from __future__ import annotations

import os

from me_fomm_datasets.common import fake

HEADER = [
  "Subject",
  "Filename",
  "Inducement Code",
  "Onset Frame",
  "Apex Frame",
  "Offset Frame",
  "Duration",
  "Type",
  "Action Units",
  "Notes",
  "Estimated Emotion",
  "Objective Classes",
]
# (subject, filename, first frame, frames, onset, apex, offset, AUs, emotion)
ROWS = [
  (6, "006_1_2", 5562, 6, 5562, 5564, 5567, "4+7", "Anger"),
  (7, "007_7_1", 1200, 6, 1200, 1203, 1205, "R12", "Happiness"),
  (18, "018_3_1", 300, 6, 300, -1, 305, "1+2", "Surprise"),  # apex not coded
  (22, "022_3_3", 800, 6, 800, 802, 805, "14", "Other"),
]


def make(root: str, bad: bool = False) -> str:
  for k, (subj, name, first, n, _onset, _apex, _offset, _aus, emo) in enumerate(ROWS):
    label = {"Happiness": "positive", "Surprise": "surprise"}.get(emo, "negative")
    frames = fake.clip_frames(
      "astronaut" if k % 2 else "grace_hopper", n, label, seed=10 + k, gray=True
    )
    for i, f in enumerate(frames):
      fake.write_image(
        os.path.join(root, "SAMM", f"{subj:03d}", name, f"{subj:03d}_{first + i:05d}.jpg"), f
      )
  rows = [
    [f"{s:03d}" if k % 2 else s, name, 1, on, ap, off, off - on, "Micro - 1/2", aus, "", emo, "I"]
    for k, (s, name, _, _, on, ap, off, aus, emo) in enumerate(ROWS)
  ]
  if bad:
    rows.append([9, "009_2_1", 1, 1, 2, 4, 3, "Micro", "12", "", "Happiness", "I"])  # no folder
  fake.write_xlsx(os.path.join(root, "SAMM_Micro_FACS_Codes_v2.xlsx"), HEADER, rows, header_row=14)
  return root
