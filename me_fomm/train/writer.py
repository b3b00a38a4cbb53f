"""What a training run shows: progress lines, JSONL + TensorBoard metrics, keypoint images.

Only process 0 writes files (the others would write the same numbers); every process may log.
TensorBoard event files come from tensorboardX, which writes the protobufs itself, so no
TensorFlow is needed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Mapping

import numpy as np

# Distinct, colour-blind-friendly colours for up to 20 keypoints (tab20), RGB 0..255.
_PALETTE = np.array(
  [
    (31, 119, 180),
    (174, 199, 232),
    (255, 127, 14),
    (255, 187, 120),
    (44, 160, 44),
    (152, 223, 138),
    (214, 39, 40),
    (255, 152, 150),
    (148, 103, 189),
    (197, 176, 213),
    (140, 86, 75),
    (196, 156, 148),
    (227, 119, 194),
    (247, 182, 210),
    (127, 127, 127),
    (199, 199, 199),
    (188, 189, 34),
    (219, 219, 141),
    (23, 190, 207),
    (158, 218, 229),
  ],
  np.uint8,
)


class MetricsWriter:
  """Appends one JSON object per logged step to `metrics.jsonl` and mirrors it to TensorBoard."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter

      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    for k, v in row.items():
      if k != "step" and isinstance(v, (int, float)):
        self._tb.add_scalar(k, v, int(step))
    self._tb.flush()

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    if self.enabled:
      self._tb.add_image(name, image, int(step), dataformats="HWC")

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def _plain(v):
  v = np.asarray(v)
  return v.item() if v.size == 1 else v.tolist()


def read_metrics(workdir: str) -> list[dict]:
  """The rows of `metrics.jsonl`, in the order written (a resumed run appends after a restart)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def draw_keypoints(image: np.ndarray, kp: np.ndarray, radius: int | None = None) -> np.ndarray:
  """`image` (H, W, 3) float in [0, 1] -> uint8 with keypoints (K, 2) in [-1, 1] as coloured dots."""
  import cv2

  img = np.ascontiguousarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
  h, w = img.shape[:2]
  radius = radius or max(1, min(h, w) // 48)
  for i, (x, y) in enumerate(np.asarray(kp, np.float32)):
    if not np.isfinite([x, y]).all():
      continue
    # Inverse of DESIGN.md's normalisation x = 2 i / (W - 1) - 1.
    px, py = int(round((x + 1) / 2 * (w - 1))), int(round((y + 1) / 2 * (h - 1)))
    colour = tuple(int(c) for c in _PALETTE[i % len(_PALETTE)])
    cv2.circle(img, (px, py), radius, colour, thickness=-1, lineType=cv2.LINE_AA)
  return img


def progress_image(
  source, driving, prediction, kp_source, kp_driving, max_rows: int = 4
) -> np.ndarray:
  """Rows of source | driving | prediction (uint8), keypoints on source (its own) and on driving
  and prediction (the driving keypoints the generator was asked to follow)."""
  rows = []
  for i in range(min(max_rows, len(source))):
    rows.append(
      np.concatenate(
        [
          draw_keypoints(source[i], kp_source[i]),
          draw_keypoints(driving[i], kp_driving[i]),
          draw_keypoints(prediction[i], kp_driving[i]),
        ],
        axis=1,
      )
    )
  return np.concatenate(rows, axis=0)


def save_png(path: str, image: np.ndarray) -> None:
  import imageio.v3 as iio

  os.makedirs(os.path.dirname(path), exist_ok=True)
  iio.imwrite(path, image)


class Progress:
  """Formats `step 120/3000 | loss 1.234 (perceptual 1.1, ...) | 14.2 pairs/s | ETA 3m20s`."""

  def __init__(self, total_steps: int, batch_size: int, start_step: int):
    self.total, self.batch = total_steps, batch_size
    self._t, self._step = time.perf_counter(), start_step

  def line(self, step: int, metrics: Mapping[str, float]) -> tuple[str, float]:
    now = time.perf_counter()
    dt = max(now - self._t, 1e-9)
    rate = (step - self._step) * self.batch / dt
    self._t, self._step = now, step
    eta = (self.total - step) * self.batch / rate if rate > 0 else float("inf")
    parts = ", ".join(
      f"{k} {v:.4g}"
      for k, v in metrics.items()
      if k not in ("loss", "skipped") and isinstance(v, float)
    )
    text = (
      f"step {step}/{self.total} | loss {metrics.get('loss', float('nan')):.4f} ({parts}) "
      f"| {rate:.2f} pairs/s | ETA {_duration(eta)}"
    )
    return text, rate


def _duration(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
