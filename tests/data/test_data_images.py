"""Frame primitives, face-framing helpers and the label / action-unit vocabulary."""

import numpy as np
import pytest

from me_fomm.data import faces, images, vocab


def test_action_units_and_labels():
  assert vocab.parse_action_units("AU4+AU7") == [4, 7]
  assert vocab.parse_action_units("R12+L14A") == [12, 14]
  assert vocab.parse_action_units(6) == [6]
  assert vocab.parse_action_units(None) == []
  assert vocab.parse_action_units(b"AU1+AU2") == [1, 2]
  hot = vocab.au_multi_hot("1+2+99")
  assert hot.sum() == 2 and hot[vocab.AU_VOCAB.index(1)] and hot[vocab.AU_VOCAB.index(2)]
  assert vocab.emotion_to_label(" Repression ") == "negative"
  assert vocab.emotion_to_label("happiness") == "positive"
  assert vocab.emotion_to_label("others") == "other"
  assert [vocab.label_name(i) for i in range(4)] == list(vocab.LABELS)
  assert vocab.label_name(np.int64(2)) == "surprise" and vocab.label_name(b"other") == "other"


def test_borrow_missing():
  a, b = np.zeros((68, 2)), np.ones((68, 2))
  lms, borrowed = faces.borrow_missing([None, a, None, None, b])
  assert borrowed.tolist() == [True, False, True, True, False]
  assert (lms[0] == 0).all() and (lms[2] == 0).all() and (lms[3] == 1).all()
  with pytest.raises(ValueError):
    faces.borrow_missing([None, None])


def test_crop_pads_outside_and_points_rescale():
  frame = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
  box = images.square_box((-5, 2, 5, 12), 0.0)
  region = images.crop_region(frame, box)
  assert region.shape == (10, 10, 3)
  assert (region[:, :5] == region[:, 5:6]).all()  # replicated left edge
  pts = np.array([[0.0, 0.0], [9.0, 9.0]])
  assert np.allclose(images.rescale_points(pts, 10, 20), [[0.5, 0.5], [18.5, 18.5]])
  assert images.centre_square(frame).shape == (20, 20, 3)
  assert np.array_equal(images.centre_square(frame), frame[:, 5:25])


def test_encode_decode_round_trip():
  img = np.random.default_rng(0).integers(0, 255, (8, 9, 3), dtype=np.uint8)
  assert np.array_equal(images.decode_frame(images.encode_png(img)), img)
  gray = images.decode_frame(images.encode_png(img[..., 0]))
  assert gray.shape == (8, 9, 3) and (gray[..., 1] == img[..., 0]).all()
  with pytest.raises(ValueError, match="rebuild"):
    images.decode_frame(b"not an image")


def test_jpeg_frames():
  import skimage.data

  img = np.ascontiguousarray(skimage.data.astronaut()[60:124, 180:244])  # part of a face
  data = images.encode_frame(img, "jpeg")
  assert data[:2] == b"\xff\xd8" and len(data) < len(images.encode_frame(img, "png"))
  back = images.decode_frame(data)
  assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 3
  with pytest.raises(ValueError, match="frame_format"):
    images.encode_frame(img, "gif")


def test_resize_area_down_bilinear_up_and_points_follow():
  img = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
  assert images.resize(img, 32) is img
  small = images.resize(img, 16)
  assert np.abs(small.astype(int) - img.reshape(16, 2, 16, 2, 3).mean((1, 3))).max() <= 1
  assert images.resize(img, (8, 12)).shape == (8, 12, 3)
  pts = np.array([[[3.0, 5.0]]] * 2, np.float32)
  frames, moved = images.resize_with_points(np.stack([img, img]), pts, 64)
  assert frames.shape == (2, 64, 64, 3) and np.allclose(moved, [[[6.5, 10.5]]] * 2)
  same, kept = images.resize_with_points(frames, moved, 64)
  assert same is frames and np.array_equal(kept, moved) and kept.dtype == np.float32
  assert images.resize_with_points([img], None, 16)[1] is None


class _Face:
  box = (0.0, 0.0, 10.0, 10.0)

  def __init__(self, size):
    self.landmarks = np.full((68, 2), size / 2 - 0.5)  # the centre of the image searched


class _CentreDetector:
  def __init__(self):
    self.sizes = []

  def detect(self, image):
    self.sizes.append(image.shape[:2])
    return _Face(image.shape[0])


def test_landmarks_are_found_at_detect_size_and_returned_at_out_size():
  det = _CentreDetector()
  lms = faces.landmarks_in_region(det, np.zeros((40, 40, 3), np.uint8), 64)
  assert det.sizes == [(faces.DETECT_SIZE, faces.DETECT_SIZE)]
  assert np.allclose(lms, 31.5)  # the centre of a 64 px image
  small, s = faces.shrink_for_detection(np.zeros((1088, 2040, 3), np.uint8))
  assert max(small.shape[:2]) == faces.FULL_FRAME_DETECT_MAX_SIDE and s == pytest.approx(640 / 2040)
  frame = np.zeros((100, 80, 3), np.uint8)
  same, s = faces.shrink_for_detection(frame)
  assert same is frame and s == 1.0
