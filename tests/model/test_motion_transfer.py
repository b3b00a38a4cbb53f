"""Relative motion transfer (normalize_kp), magnification and the adapt-scale hull areas."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from me_fomm.model import motion_transfer


def _kp(rng, b=1, k=5):
  return {
    "value": rng.uniform(-0.8, 0.8, (b, k, 2)).astype(np.float32),
    "jacobian": (np.eye(2) + 0.2 * rng.normal(size=(b, k, 2, 2))).astype(np.float32),
  }


def test_normalize_kp_magnify():
  rng = np.random.default_rng(3)
  src, drv, ini = _kp(rng), _kp(rng), _kp(rng)
  one = motion_transfer.normalize_kp(src, drv, ini, magnify=1.0)
  # alpha = 1: the original formulas.
  np.testing.assert_allclose(one["value"], src["value"] + drv["value"] - ini["value"], atol=1e-6)
  jd = drv["jacobian"] @ np.linalg.inv(ini["jacobian"])
  np.testing.assert_allclose(one["jacobian"], jd @ src["jacobian"], atol=1e-5)
  two = motion_transfer.normalize_kp(src, drv, ini, magnify=2.0)
  np.testing.assert_allclose(
    two["value"] - src["value"], 2 * (one["value"] - src["value"]), atol=1e-6
  )
  eye = np.eye(2)
  np.testing.assert_allclose(two["jacobian"], (eye + 2 * (jd - eye)) @ src["jacobian"], atol=1e-5)
  # No relative movement: the driving keypoints as they are.
  plain = motion_transfer.normalize_kp(src, drv, ini, use_relative_movement=False)
  np.testing.assert_array_equal(plain["value"], drv["value"])


def test_convex_hull_area():
  square = np.array(
    [[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0]], float
  )  # interior + edge points
  assert motion_transfer.convex_hull_area(square) == pytest.approx(4.0)
  assert motion_transfer.convex_hull_area([[0, 0], [1, 1], [2, 2]]) == 0.0
  from scipy.spatial import ConvexHull

  pts = np.random.default_rng(4).normal(size=(18, 2))
  assert motion_transfer.convex_hull_area(pts) == pytest.approx(ConvexHull(pts).volume, rel=1e-12)


def test_adapt_scale_under_jit_needs_precomputed_scale():
  rng = np.random.default_rng(5)
  src, drv, ini = _kp(rng), _kp(rng), _kp(rng)
  with pytest.raises(ValueError, match="movement_scale"):
    jax.jit(lambda a, b, c: motion_transfer.normalize_kp(a, b, c, adapt_movement_scale=True))(
      src, drv, ini
    )
