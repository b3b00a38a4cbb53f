"""STSTNet's input: OpenCV's Dual TV-L1 flow recovers a known sub-pixel shift, the optical strain of
known flows, and the 28x28 normalised maps."""

import cv2
import numpy as np

from me_fomm.recognize import features as F


def _texture(size=128, seed=0):
  rng = np.random.default_rng(seed)
  noise = rng.normal(0, 1, (size, size)).astype(np.float32)
  smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
  smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
  return np.repeat((smooth * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _shifted(image, dx, dy):
  m = np.float32([[1, 0, dx], [0, 1, dy]])
  return cv2.warpAffine(
    image, m, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
  )


def test_tvl1_recovers_a_subpixel_shift():
  onset = _texture()
  apex = _shifted(onset, 0.6, -0.4)  # micro-expression-sized motion
  flow = F.tvl1_flow(onset, apex, flow_size=128)
  assert flow.shape == (128, 128, 2) and flow.dtype == np.float32
  inner = flow[16:-16, 16:-16].reshape(-1, 2)
  # OpenCV's convention: onset(p) ~ apex(p + flow(p)); TV-L1 recovers the shift to 0.1 px.
  np.testing.assert_allclose(np.median(inner, axis=0), [0.6, -0.4], atol=0.1)


def test_optical_strain_of_known_flows():
  y, x = np.mgrid[0:32, 0:32].astype(np.float32)
  stretch = np.stack([0.03 * x, -0.02 * y], -1)  # e_xx = 0.03, e_yy = -0.02, e_xy = 0
  np.testing.assert_allclose(F.optical_strain(stretch), np.hypot(0.03, 0.02), rtol=1e-5)
  shear = np.stack([0.05 * y, 0.05 * x], -1)  # e_xy = 0.05
  np.testing.assert_allclose(F.optical_strain(shear), np.sqrt(2) * 0.05, rtol=1e-5)
  rotation = np.stack([-0.05 * y, 0.05 * x], -1)  # a rigid rotation has no strain
  np.testing.assert_allclose(F.optical_strain(rotation), 0, atol=1e-7)


def test_features_are_28x28_normalised_and_still_clips_are_zero():
  onset = _texture(64)
  feats = F.flow_features(onset, _shifted(onset, 0.5, 0.0))
  assert feats.shape == (28, 28, 3) and feats.dtype == np.float32
  np.testing.assert_allclose(np.abs(feats).reshape(-1, 3).max(0), 1.0, rtol=1e-6)
  assert feats[8:20, 8:20, 0].mean() > 0.5  # rightward motion: positive horizontal flow
  assert np.abs(F.flow_features(onset, onset)).max() < 1e-3
  batch = F.features_of([(onset, onset)] * 2)
  assert batch.shape == (2, 28, 28, 3)
  # Any stored resolution: the frames are resized to flow_size before the flow.
  big = cv2.resize(onset, (256, 256))
  assert F.tvl1_flow(big, big, flow_size=64).shape == (64, 64, 2)
