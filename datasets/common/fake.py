"""Fake corpora for tests: real face photos (shipped in scikit-image and matplotlib) with a
small synthetic micro-expression, written as the real corpora lay out their frames.

Frames are placed on a larger canvas (the real corpora show a head in a studio frame) and
saved as the real files (jpg/bmp, grayscale for SAMM). dlib finds the faces, so the builders
run their true preprocessing on them.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np

FACE_SIZE = 160  # side of the face crop pasted onto the canvas
CANVAS = (240, 320)  # (H, W); small so tests are fast


@functools.lru_cache(maxsize=None)
def _face(identity: str):
  from me_fomm.data import images
  from me_fomm.prior.landmarks import LandmarkDetector
  from me_fomm_datasets.synthetic_me import synthetic_me_dataset_builder as S

  photo = S.identity_photo(identity)
  det = LandmarkDetector(upsample=1)
  face = det.detect(photo)
  crop = images.resize(images.crop_region(photo, images.square_box(face.box, 0.35)), FACE_SIZE)
  landmarks = det.detect(images.resize(crop, 256)).landmarks
  return crop, np.asarray(landmarks, np.float64) * FACE_SIZE / 256


def clip_frames(
  identity: str,
  num_frames: int,
  label: str = "positive",
  seed: int = 0,
  canvas=CANVAS,
  gray: bool = False,
) -> list:
  """uint8 frames ((H, W, 3), or (H, W) if gray) of a small expression on a flat background."""
  from me_fomm_datasets.synthetic_me import render

  crop, lms = _face(identity)
  rng = np.random.default_rng(seed)
  motion = render.sample_motion(rng, label, max(num_frames, 6))
  frames, _ = render.render_clip(crop, lms, motion)
  h, w = canvas
  y0, x0 = (h - FACE_SIZE) // 2, (w - FACE_SIZE) // 2 + int(rng.integers(-20, 21))
  out = []
  for f in frames[:num_frames]:
    c = np.full((h, w, 3), 90, np.uint8)
    c[y0 : y0 + FACE_SIZE, x0 : x0 + FACE_SIZE] = f
    out.append(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) if gray else c)
  return out


def write_image(path: str, frame: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  img = frame if frame.ndim == 2 else frame[..., ::-1]
  if not cv2.imwrite(path, img):
    raise OSError(f"could not write {path}")


def blank_frames(num_frames: int, canvas=CANVAS) -> list:
  """Frames without a face (noise on gray): dlib must find nothing."""
  rng = np.random.default_rng(0)
  return [
    np.clip(rng.normal(120, 5, tuple(canvas) + (3,)), 0, 255).astype(np.uint8)
    for _ in range(num_frames)
  ]


def truncate(path: str, keep: int = 100) -> None:
  """Cuts an image file short, like an interrupted copy."""
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:keep])


def write_xlsx(path: str, header: list, rows: list, header_row: int = 1) -> None:
  """A spreadsheet with `header` on `header_row` (1-based) and title rows above it."""
  import openpyxl

  wb = openpyxl.Workbook()
  ws = wb.active
  for r in range(1, header_row):
    ws.cell(row=r, column=1, value=f"title line {r}" if r < 3 else None)
  for c, name in enumerate(header, start=1):
    ws.cell(row=header_row, column=c, value=name)
  for r, row in enumerate(rows, start=header_row + 1):
    for c, v in enumerate(row, start=1):
      ws.cell(row=r, column=c, value=v)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  wb.save(path)
