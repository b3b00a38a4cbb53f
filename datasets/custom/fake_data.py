"""A fake custom folder for tests: one mp4 video and one frame folder, with a clips.csv."""

from __future__ import annotations

import os

from me_fomm_datasets.common import fake


def make(root: str) -> str:
  import imageio.v3 as iio

  os.makedirs(os.path.join(root, "alice"), exist_ok=True)
  frames = fake.clip_frames("grace_hopper", 6, "positive", seed=30)
  iio.imwrite(
    os.path.join(root, "alice", "smile_01.mp4"),
    frames,
    fps=25,
    codec="libx264",
    macro_block_size=16,
  )
  for i, f in enumerate(fake.clip_frames("astronaut", 6, "surprise", seed=31)):
    fake.write_image(os.path.join(root, "bob_02", f"{i + 1:04d}.png"), f)
  with open(os.path.join(root, "clips.csv"), "w") as f:
    f.write("clip_id,emotion,onset,apex,offset\nalice/smile_01,happiness,0,3,5\n")
  return root
