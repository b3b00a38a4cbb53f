"""STSTNet's input (Liong et al. 2019): TV-L1 optical flow from the onset to the apex frame, its
horizontal and vertical components and the optical strain, each resized to 28x28.

Flow is OpenCV's contrib Dual TV-L1 (Zach, Pock and Bischof 2007; `cv2.optflow`), the method of the
paper, with OpenCV's default parameters, on the grey frames resized to `flow_size` first, so clips of
any stored resolution give flow in the same units. Optical strain is the magnitude of the symmetric
flow gradient, |e| = sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2) with e_xy = (du/dy + dv/dx) / 2 (Shreve et al.).

The published pipeline feeds the three maps as normalised images; here each map is divided by its
largest absolute value over the clip (`normalise`), which keeps the sign of the flow and maps a
clip's motion pattern to [-1, 1] whatever its amplitude (a standing-still clip stays all zeros).
Channels: (horizontal flow, vertical flow, optical strain).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

SIZE = 28  # STSTNet's input side
FLOW_SIZE = 128  # frames are resized to this before the flow
CHANNELS = ("flow_x", "flow_y", "strain")

_local = threading.local()


def _tvl1():
  """One Dual TV-L1 solver per thread (the OpenCV object keeps buffers between calls)."""
  if getattr(_local, "tvl1", None) is None:
    if not hasattr(cv2, "optflow"):
      raise ImportError(
        "cv2.optflow is missing: the recogniser needs OpenCV's contrib modules; "
        "pip install opencv-contrib-python-headless (instead of opencv-python-headless)"
      )
    _local.tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
  return _local.tvl1


def grey(frame: np.ndarray, size: int) -> np.ndarray:
  """uint8 (H, W, 3) RGB or (H, W) grey -> uint8 (size, size) grey (area down, bilinear up)."""
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:
    raise ValueError(f"frames must be uint8, got {frame.dtype}")
  g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
  if g.shape != (size, size):
    up = size > g.shape[0]
    g = cv2.resize(g, (size, size), interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)
  return g


def tvl1_flow(onset: np.ndarray, apex: np.ndarray, flow_size: int = FLOW_SIZE) -> np.ndarray:
  """(flow_size, flow_size, 2) float32 flow (dx, dy) in pixels of the resized frames, OpenCV's
  convention: onset(p) ~ apex(p + flow(p))."""
  return _tvl1().calc(grey(onset, flow_size), grey(apex, flow_size), None)


def optical_strain(flow: np.ndarray) -> np.ndarray:
  """(H, W) magnitude of the strain tensor of a (H, W, 2) flow (central differences)."""
  u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
  du_dy, du_dx = np.gradient(u)
  dv_dy, dv_dx = np.gradient(v)
  exy = 0.5 * (du_dy + dv_dx)
  return np.sqrt(du_dx**2 + dv_dy**2 + 2.0 * exy**2).astype(np.float32)


def normalise(maps: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """Each channel of (H, W, C) divided by its largest absolute value (zeros stay zeros)."""
  peak = np.abs(maps).reshape(-1, maps.shape[-1]).max(0)
  return (maps / np.maximum(peak, eps)).astype(np.float32)


def flow_features(
  onset: np.ndarray, apex: np.ndarray, flow_size: int = FLOW_SIZE, size: int = SIZE
) -> np.ndarray:
  """(size, size, 3) float32 STSTNet input of an onset and an apex frame (uint8 RGB or grey)."""
  flow = tvl1_flow(onset, apex, flow_size)
  maps = np.concatenate([flow, optical_strain(flow)[..., None]], axis=-1)
  small = cv2.resize(maps, (size, size), interpolation=cv2.INTER_AREA)
  return normalise(small)


def features_of(pairs, flow_size: int = FLOW_SIZE, size: int = SIZE) -> np.ndarray:
  """(N, size, size, 3) features of a sequence of (onset, apex) frame pairs."""
  out = [flow_features(a, b, flow_size, size) for a, b in pairs]
  return np.stack(out) if out else np.zeros((0, size, size, 3), np.float32)
