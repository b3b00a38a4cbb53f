"""Frame primitives shared by the corpus builders (`datasets/`), training, generation and evaluation.

Frames are uint8 (H, W, 3) RGB; points are (..., 2) float32 pixel coordinates (x, y) of pixel
centres. Keeping encoding, cropping, resizing and point rescaling in one module makes every path
(build, training pairs, generation, evaluation) compute the same pixels and the same landmarks.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# PNG compression 1: frames are small, and decoding speed matters more than disk space.
PNG_COMPRESSION = 1
# 'png' is lossless (the default: sub-pixel motion and ground truth stay exact); 'jpeg' at
# quality 95 decodes ~4x faster and is ~4x smaller (CASME II and SAMM ship as JPEG anyway),
# for when the training input pipeline is decode-bound.
FRAME_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 95


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
  """x (m, ...) padded to n rows by repeating its last: one compiled program of n rows then serves
  every shorter chunk (generation's frame batches, LPIPS's chunks)."""
  return x if len(x) >= n else np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def encode_png(frame: np.ndarray) -> bytes:
  """PNG bytes of uint8 (H, W, 3) RGB or (H, W) gray."""
  img = frame if frame.ndim == 2 else frame[..., ::-1]
  ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
  if not ok:
    raise ValueError(f"could not PNG-encode a frame of shape {frame.shape}")
  return buf.tobytes()


def encode_frame(frame: np.ndarray, frame_format: str = "png") -> bytes:
  """Encoded bytes of uint8 (H, W, 3) RGB or (H, W) gray in one of FRAME_FORMATS."""
  if frame_format == "png":
    return encode_png(frame)
  if frame_format != "jpeg":
    raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got {frame_format!r}.")
  img = frame if frame.ndim == 2 else frame[..., ::-1]
  ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
  if not ok:
    raise ValueError(f"could not JPEG-encode a frame of shape {frame.shape}")
  return buf.tobytes()


def decode_frame(data: bytes) -> np.ndarray:
  """uint8 (H, W, 3) RGB from stored frame bytes (PNG or JPEG; gray comes back as 3 channels)."""
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise ValueError("stored frame is not a decodable image; rebuild the dataset.")
  return img[..., ::-1]


def square_box(box: Sequence[float], margin: float) -> tuple[float, float, float, float]:
  """Square (x0, y0, x1, y1) around a face box, grown by `margin` of its side on every side
  (the same side as the prior's `crop_box`: longer face side x (1 + 2 margin)).

  Not shifted or clipped to the frame: `crop_region` pads with edge pixels instead, so a face
  near the border stays centred and keeps its scale. The corpus build and the generation
  targets (`me_fomm.generate.target`) crop with these two functions, so training and
  generation see faces framed alike.
  """
  x0, y0, x1, y1 = (float(v) for v in box)
  side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
  cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
  return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def crop_region(frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
  """The pixels of integer-rounded `box`, padded by edge replication where it leaves the frame
  (a face larger than the frame, or a box from elsewhere)."""
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  h, w = frame.shape[:2]
  pad = max(0, -x0, -y0, x1 - w, y1 - h)
  if pad:
    frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
  return frame[y0 + pad : y1 + pad, x0 + pad : x1 + pad]


def centre_square(frame: np.ndarray) -> np.ndarray:
  """The largest centred square of a frame (an aligned face that is not square is not squashed)."""
  h, w = frame.shape[:2]
  if h == w:
    return frame
  side = min(h, w)
  y0, x0 = (h - side) // 2, (w - side) // 2
  return frame[y0 : y0 + side, x0 : x0 + side]


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """`img` resized to size x size (or (h, w)): area averaging to shrink, bilinear to grow
  (chosen by the height); returned unchanged when it has that size already."""
  h, w = (size, size) if isinstance(size, (int, np.integer)) else size
  if img.shape[0] == h and img.shape[1] == w:
    return img
  shrink = img.shape[0] > h
  return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def rescale_points(points: np.ndarray, src_size: float, dst_size: float) -> np.ndarray:
  """Pixel coordinates after resizing a square image from src_size to dst_size.

  Pixel centres map as x' = (x + 0.5) * s - 0.5 (the convention cv2.resize uses).
  """
  s = dst_size / src_size
  return ((points + 0.5) * s - 0.5).astype(np.float32)


def resize_with_points(
  frames: Sequence[np.ndarray] | np.ndarray, points: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None]:
  """Square uint8 frames ((T, H, H, 3) or a list of (H, H, 3)) and their (T, ..., 2) points,
  resized together to size x size: ((T, size, size, 3), float32 points or None)."""
  stored = frames[0].shape[0]
  if isinstance(frames, np.ndarray) and frames.shape[1:3] == (size, size):
    out = frames
  else:
    out = np.stack([resize(f, size) for f in frames])
  if points is None:
    return out, None
  points = np.asarray(points, np.float32)
  return out, points if stored == size else rescale_points(points, stored, size)
