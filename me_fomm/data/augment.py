"""Augmentations of FOMM's training (Siarohin et al. 2019, `augmentation.py`), in NumPy.

One draw of parameters per example is applied identically to all of its frames (source and
driving, or a whole clip), as FOMM does, so augmentation never fakes motion:
- horizontal flip: pixels flipped AND landmarks mirrored, x -> W - 1 - x, with each point
  moved to its mirror slot (the subject's right brow stays "right brow"); the seed code
  flipped pixels only, which left the facial prior describing the wrong side of the face;
- time flip: the clip runs backwards (for a pair, source and driving swap);
- colour jitter: brightness, contrast, saturation, hue like torchvision's ColorJitter with
  FOMM's 0.1 ranges;
- ours, off by default (FOMM has none): a random similarity transform (rotation, scale, shift
  about the image centre) of the frames and their landmarks. With one training face (the demo)
  it shows the dense motion network keypoint layouts other than that face's own.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from me_fomm.prior.au_keypoints import mirror_landmarks


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  flip_prob: float = 0.5
  time_flip_prob: float = 0.5
  brightness: float = 0.1
  contrast: float = 0.1
  saturation: float = 0.1
  hue: float = 0.1
  rotate: float = 0.0  # degrees, uniform in [-rotate, rotate]
  scale: float = 0.0  # zoom uniform in [1 - scale, 1 + scale]
  shift: float = 0.0  # per axis, uniform in [-shift, shift] x image size

  def __post_init__(self):
    limits = {"hue": 0.5, "rotate": 45.0, "scale": 0.5, "shift": 0.5}
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      limit = limits.get(f.name, 1.0 if f.name.endswith("prob") else 1e9)
      if not 0.0 <= v <= limit:
        raise ValueError(f"AugmentConfig.{f.name} must be in [0, {limit}], got {v!r}.")

  @classmethod
  def none(cls) -> "AugmentConfig":
    return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

  @property
  def colour(self) -> bool:
    return any((self.brightness, self.contrast, self.saturation, self.hue))

  @property
  def geometric(self) -> bool:
    return any((self.rotate, self.scale, self.shift))


def hflip(frames: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Flip (..., H, W, C) frames left-right and mirror (..., 68, 2) landmarks to match."""
  width = frames.shape[-2]
  return frames[..., ::-1, :], np.asarray(mirror_landmarks(landmarks, width), np.float32)


def sample_similarity(rng: np.random.Generator, cfg: AugmentConfig, size: int) -> np.ndarray:
  """2x3 matrix (cv2 convention: dst = M @ [x, y, 1], pixel centres) of a rotation and zoom about
  the centre of a size x size image followed by a shift, drawn from `cfg`'s ranges."""
  angle = float(rng.uniform(-cfg.rotate, cfg.rotate)) if cfg.rotate else 0.0
  zoom = float(rng.uniform(1 - cfg.scale, 1 + cfg.scale)) if cfg.scale else 1.0
  shift = rng.uniform(-cfg.shift, cfg.shift, 2) * size if cfg.shift else np.zeros(2)
  centre = (size - 1) / 2.0
  m = cv2.getRotationMatrix2D((centre, centre), angle, zoom)
  m[:, 2] += shift
  return m


def warp_similarity(
  frames: np.ndarray, landmarks: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """(N, H, W, C) uint8 frames and (..., 2) landmarks moved by the 2x3 matrix `m`; pixels outside
  the frame repeat its edge (as the corpus crops pad)."""
  h, w = frames.shape[1:3]
  out = np.stack(
    [
      cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
      for f in frames
    ]
  )
  pts = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
  return out, pts.astype(np.float32)


# RGB <-> YIQ: hue is a rotation of the (I, Q) chroma plane, so hue shift, saturation and
# brightness are all linear maps of RGB and fold into one 3x3 matrix.
_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)
_GRAY = np.array([0.299, 0.587, 0.114])


@dataclasses.dataclass(frozen=True)
class ColourParams:
  brightness: float = 1.0
  contrast: float = 1.0
  saturation: float = 1.0
  hue: float = 0.0  # fraction of a full turn

  @property
  def identity(self) -> bool:
    return self == ColourParams()


def sample_colour(rng: np.random.Generator, cfg: AugmentConfig) -> ColourParams:
  u = lambda r: float(rng.uniform(max(0.0, 1 - r), 1 + r)) if r else 1.0
  return ColourParams(
    brightness=u(cfg.brightness),
    contrast=u(cfg.contrast),
    saturation=u(cfg.saturation),
    hue=float(rng.uniform(-cfg.hue, cfg.hue)) if cfg.hue else 0.0,
  )


def colour_matrix(p: ColourParams) -> np.ndarray:
  """3x3 matrix M (applied as rgb @ M.T) for brightness * saturation * hue."""
  a = 2 * np.pi * p.hue
  rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
  hue = _YIQ2RGB @ rot @ _RGB2YIQ
  sat = p.saturation * np.eye(3) + (1 - p.saturation) * np.outer(np.ones(3), _GRAY)
  return (p.brightness * sat @ hue).astype(np.float32)


def apply_colour(frames: np.ndarray, p: ColourParams) -> np.ndarray:
  """float32 [0, 1] (..., H, W, 3) frames with the colour jitter applied (clipped to [0, 1]).

  Contrast blends each frame with its mean gray level (torchvision's adjust_contrast).
  """
  if p.identity:
    return frames
  out = np.clip(frames @ colour_matrix(p).T, 0.0, 1.0)  # torchvision clamps after each op
  if p.contrast != 1.0:
    mean = (out @ _GRAY.astype(np.float32)).mean(axis=(-2, -1), keepdims=True)[..., None]
    out = p.contrast * out + (1 - p.contrast) * mean
  return np.clip(out, 0.0, 1.0, out=out)


def apply_colour_uint8(frames: np.ndarray, p: ColourParams) -> np.ndarray:
  """`apply_colour` on uint8 (N, H, W, 3) frames, in uint8 (saturating, as clipping does).

  The training pipeline jitters before converting to float: cv2.transform applies the 3x3
  matrix with SIMD, several times faster than float matrix products in NumPy; rounding to
  uint8 changes values by at most half a grey level.
  """
  if p.identity:
    return frames
  m = colour_matrix(p)
  out = np.empty_like(frames)
  for i, frame in enumerate(frames):
    out[i] = cv2.transform(frame, m)
    if p.contrast != 1.0:
      mean = float(cv2.cvtColor(out[i], cv2.COLOR_RGB2GRAY).mean())
      out[i] = cv2.addWeighted(out[i], p.contrast, out[i], 0.0, (1.0 - p.contrast) * mean)
  return out
