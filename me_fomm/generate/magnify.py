"""Magnified views: micro-expression motion made visible, and always labelled as magnified.

The synthetic and real micro-expressions move the face by well under a pixel at the model's resolution, so a
plain video of a generation looks still. `magnify` is linear Eulerian magnification (Wu et al., SIGGRAPH
2012, first-order form): for a small motion delta, I(x + delta) ~ I(x) + delta . grad I, so
onset + N * (frame - onset) shows the motion N times larger (with the frame's noise N times larger too, and
ringing where the amplified motion stops being small). It is for looking at, never for scoring; every view
made here carries the factor in its caption ("magnified x8").

This is not `me-fomm generate --magnify`, which multiplies the keypoint motion the model is driven with and
so changes the generation; this changes only how any frames (driving, generated, ground truth alike) are
shown.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from me_fomm.generate import video as video_lib

DEFAULT_FACTOR = 8
CAPTION_HEIGHT = 16


def magnify(frames, factor: float, reference: int = 0) -> np.ndarray:
  """uint8 (T, H, W, 3): reference frame + factor * (frame - reference frame), clipped to [0, 255]."""
  f = video_lib.as_uint8_frames(frames).astype(np.float32)
  if not 0 <= reference < len(f):
    raise ValueError(f"magnify: reference frame {reference} outside the clip's {len(f)} frames")
  out = f[reference] + float(factor) * (f - f[reference])
  return (np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)


def caption(frames, text: str, height: int = CAPTION_HEIGHT) -> np.ndarray:
  """Frames with a white band above them holding `text` (black, centred): uint8 (T, H + height, W, 3)."""
  from PIL import Image, ImageDraw, ImageFont

  f = video_lib.as_uint8_frames(frames)
  t, _, w, _ = f.shape
  band = Image.new("RGB", (w, height), (255, 255, 255))
  draw = ImageDraw.Draw(band)
  font = ImageFont.load_default(size=max(8, height - 5))
  box = draw.textbbox((0, 0), text, font=font)
  x = max(0, (w - (box[2] - box[0])) // 2)
  y = max(0, (height - (box[3] - box[1])) // 2 - box[1])
  draw.text((x, y), text, fill=(0, 0, 0), font=font)
  top = np.broadcast_to(np.asarray(band, np.uint8)[None], (t, height, w, 3))
  return np.concatenate([top, f], axis=1)


def magnified_strip(
  panels: Sequence[tuple[str, np.ndarray]],
  reference: int = 0,
  factor: float = DEFAULT_FACTOR,
  size: int = 96,
) -> np.ndarray:
  """Side by side, each panel magnified about its own reference frame, upscaled to `size` px and captioned
  with its name, under a title band "magnified xN": uint8 (T, H', W', 3).

  `panels`: (name, (T, H, W, 3) frames) pairs (a single frame is repeated: it shows no motion).
  """
  views = []
  for name, frames in panels:
    f = video_lib.as_uint8_frames(
      frames if np.asarray(frames).ndim == 4 else np.asarray(frames)[None]
    )
    m = magnify(f, factor, min(reference, len(f) - 1))
    views.append(caption(video_lib.resize_frames(m, size), name))
  strip = video_lib.side_by_side(*views)
  return caption(strip, f"magnified x{factor:g}: onset + {factor:g} x (frame - onset)", 18)
