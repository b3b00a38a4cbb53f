"""A schematic upright face in dlib's 68-point layout (iBUG order), for tests that need plausible landmarks
without running dlib: eye centres at (-0.5, 0) and (0.5, 0) in units of the inter-ocular distance."""

import numpy as np


def _schematic() -> np.ndarray:
  theta = np.pi - np.pi * np.arange(17) / 16
  jaw = np.stack([1.05 * np.cos(theta), 0.05 + 1.5 * np.sin(theta)], -1)
  bx = np.linspace(-0.95, -0.2, 5)
  right_brow = np.stack([bx, -0.42 - 0.12 * np.sin(np.linspace(0.3, 2.8, 5))], -1)
  left_brow = right_brow[::-1] * [-1, 1]
  bridge = np.stack([np.zeros(4), [0.05, 0.25, 0.45, 0.65]], -1)
  nostrils = np.array([[-0.25, 0.75], [-0.12, 0.78], [0, 0.8], [0.12, 0.78], [0.25, 0.75]])
  right_eye = np.array(
    [[-0.75, 0], [-0.6, -0.08], [-0.4, -0.08], [-0.25, 0], [-0.4, 0.07], [-0.6, 0.07]]
  )
  left_eye = np.array([[0.25, 0], [0.4, -0.08], [0.6, -0.08], [0.75, 0], [0.6, 0.07], [0.4, 0.07]])
  outer = np.array(
    [[-0.45, 1.1], [-0.3, 1.0], [-0.12, 0.95], [0, 0.97], [0.12, 0.95], [0.3, 1.0], [0.45, 1.1]]
    + [[0.3, 1.22], [0.12, 1.27], [0, 1.28], [-0.12, 1.27], [-0.3, 1.22]]
  )
  inner = np.array(
    [[-0.38, 1.1], [-0.12, 1.06], [0, 1.07], [0.12, 1.06], [0.38, 1.1]]
    + [[0.12, 1.14], [0, 1.15], [-0.12, 1.14]]
  )
  parts = (jaw, right_brow, left_brow, bridge, nostrils, right_eye, left_eye, outer, inner)
  return np.concatenate(parts).astype(np.float64)


def face(iod: float = 60.0, centre=(64.0, 56.0), angle_deg: float = 0.0) -> np.ndarray:
  """(68, 2) float64 pixels: the schematic face at this inter-ocular distance, position and tilt."""
  a = np.deg2rad(angle_deg)
  rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  return np.asarray(centre, np.float64) + iod * _schematic() @ rot.T
