"""The target photo: dlib crop with the training rules, no face, several faces."""

import logging

import cv2
import numpy as np
import pytest
import skimage.data

from me_fomm.generate import target as target_lib
from me_fomm.prior.landmarks import LandmarkDetector


@pytest.fixture(scope="module")
def detector():
  return LandmarkDetector()


def test_crop_astronaut_face_with_landmarks(detector):
  photo = skimage.data.astronaut()
  t = target_lib.prepare_target(photo, 64, detector=detector)
  assert t.image.shape == (64, 64, 3) and t.image.dtype == np.uint8  # as clip frames are
  assert t.landmarks.dtype == np.float32
  assert t.landmarks.shape == (68, 2)
  # The face fills the crop as in training: margin 0.2 per side -> the face box is ~1/1.4 of the side.
  span = t.landmarks[:, 0].max() - t.landmarks[:, 0].min()
  assert 0.45 * 64 < span < 0.9 * 64
  x0, y0, x1, y1 = t.box
  assert x1 - x0 == pytest.approx(y1 - y0)
  # The box is around the real face (dlib's box (175, 76)-(265, 166) at upsample 1), not the flag patch.
  assert 150 < (x0 + x1) / 2 < 290 and 60 < (y0 + y1) / 2 < 190


def test_no_face_suggests_no_crop(detector):
  noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
  with pytest.raises(target_lib.NoFaceError, match="--no_crop"):
    target_lib.prepare_target(noise, 64, detector=detector)
  # --no_crop on a model without prior keypoints: no face needed, centre square, resized.
  t = target_lib.prepare_target(noise, 32, crop=False, detector=detector, need_landmarks=False)
  assert t.image.shape == (32, 32, 3) and t.box is None
  square = noise[:, 20:140]
  np.testing.assert_array_equal(t.image, cv2.resize(square, (32, 32), interpolation=cv2.INTER_AREA))
  # ...but a prior-keypoint model needs landmarks, and says so.
  with pytest.raises(target_lib.NoFaceError, match="landmarks"):
    target_lib.prepare_target(noise, 32, crop=False, detector=detector, need_landmarks=True)


def test_several_faces_take_the_largest_and_warn(detector, caplog):
  face = skimage.data.astronaut()[40:220, 130:310]  # 180x180 around the face
  small = cv2.resize(face, (120, 120), interpolation=cv2.INTER_AREA)
  canvas = np.full((260, 420, 3), 200, np.uint8)
  canvas[40:220, 10:190] = face
  canvas[70:190, 260:380] = small
  with caplog.at_level(logging.WARNING):
    t = target_lib.prepare_target(canvas, 64, detector=detector)
  assert t.faces_found >= 2
  assert "using the largest" in caplog.text
  cx = (t.box[0] + t.box[2]) / 2
  assert cx < 200  # the big face on the left
