"""A fake SMIC_all_raw download for tests (HS and VIS; bmp frames; class = folder name)."""

from __future__ import annotations

import os

from me_fomm_datasets.common import fake

# (camera, subject, class, clip, first frame, frames)
CLIPS = [
  ("HS", "s3", "positive", "s3_po_05", 100, 6),
  ("HS", "s11", "negative", "s11_ne_02", 2000, 6),
  ("HS", "s20", "surprise", "s20_sur_01", 50, 6),
  ("VIS", "s1", "negative", "s1_ne_01", 1, 6),
]


def make(root: str) -> str:
  for k, (cam, subj, cls, clip, first, n) in enumerate(CLIPS):
    frames = fake.clip_frames("grace_hopper" if k % 2 else "astronaut", n, cls, seed=20 + k)
    for i, f in enumerate(frames):
      fake.write_image(
        os.path.join(
          root, "SMIC_all_raw", cam, subj, "micro", cls, clip, f"image{first + i:06d}.bmp"
        ),
        f,
      )
  # A non-micro folder, which must be ignored.
  frames = fake.clip_frames("astronaut", 6, "positive", seed=99)
  fake.write_image(
    os.path.join(root, "SMIC_all_raw", "HS", "s3", "non_micro", "s3_no_01", "image000001.bmp"),
    frames[0],
  )
  return root
