"""dlib landmarks on real photos: scikit-image's astronaut and the seed fixture's frames."""

import pathlib

import numpy as np
import pytest
import skimage.data

from me_fomm.prior import au_keypoints as au
from me_fomm.prior import landmarks as lmk

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "reference" / "seed_small_s0.npz"


@pytest.fixture(scope="module")
def detector():
  return lmk.LandmarkDetector()


@pytest.fixture(scope="module")
def astronaut():
  return skimage.data.astronaut()


@pytest.fixture(scope="module")
def astronaut_faces(detector, astronaut):
  return detector.faces(astronaut)


def test_astronaut_best_face_and_weak_false_positive(astronaut_faces, detector, astronaut):
  scores = [f.score for f in astronaut_faces]
  assert scores == sorted(scores, reverse=True)
  best = astronaut_faces[0]
  # Eileen Collins' face is in the upper middle of the 512 x 512 photo.
  x0, y0, x1, y1 = best.box
  assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200 and best.score > 0.5
  # HOG's weaker extra detections are why we keep the best score; a stricter threshold drops them.
  strict = lmk.LandmarkDetector(threshold=0.5).faces(astronaut)
  assert len(strict) == 1 and strict[0].box == best.box


def test_astronaut_landmarks_and_au_keypoints_in_place(astronaut_faces):
  face = astronaut_faces[0]
  lm = face.landmarks
  assert lm.shape == (68, 2) and lm.dtype == np.float32
  x0, y0, x1, y1 = face.box
  k = au.landmarks_to_au(lm)
  assert k.shape == (18, 2)
  assert np.all((k[:, 0] >= x0) & (k[:, 0] < x1) & (k[:, 1] >= y0) & (k[:, 1] < y1))
  brows, lids, nostrils, mouth = k[[0, 1]], k[[3, 4, 5, 6]], k[[12, 13]], k[[7, 8, 9, 10, 11]]
  assert brows[:, 1].max() < lids[:, 1].min()
  assert lids[:, 1].max() < nostrils[:, 1].min()
  assert nostrils[:, 1].max() < mouth[:, 1].min()
  # Image-left before image-right: brows, mouth corners, and the shifted points outside the corners.
  assert k[0, 0] < k[2, 0] < k[1, 0]
  assert k[16, 0] < k[7, 0] < k[8, 0] < k[17, 0]
  assert k[12, 0] < lm[33, 0] < k[13, 0]
  # Cheek points lie below the lower eyelids.
  assert k[14, 1] > k[4, 1] and k[15, 1] > k[6, 1]


def test_landmarks_in_given_box_and_gray_frames(detector, astronaut, astronaut_faces):
  face = astronaut_faces[0]
  np.testing.assert_array_equal(detector.landmarks(astronaut, face.box), face.landmarks)
  gray = (
    (astronaut.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    .round()
    .astype(np.uint8)
  )
  gray_face = detector.detect(gray)
  assert gray_face is not None
  assert np.abs(gray_face.landmarks - face.landmarks).mean() < 3.0


def test_matches_seed_fixture_landmarks(detector):
  ref = np.load(FIXTURE)
  for b in range(ref["frames"].shape[0]):
    frame = np.clip(np.round(ref["frames"][b] * 255), 0, 255).astype(np.uint8)
    lm68, au18 = lmk.au_keypoints_for_frame(frame, detector)
    np.testing.assert_allclose(lm68, ref["landmarks68_px"][b], atol=2.0)
    np.testing.assert_allclose(au18, ref["au_keypoints_px"][b], atol=3.0)


def test_descriptor_identifies_the_same_person(detector, astronaut, astronaut_faces):
  ref = np.load(FIXTURE)
  crop = np.clip(np.round(ref["frames"][0] * 255), 0, 255).astype(
    np.uint8
  )  # the same face, cropped
  d_full = detector.descriptor(astronaut, astronaut_faces[0])
  d_crop = detector.descriptor(crop, detector.detect(crop))
  assert d_full.shape == (128,) and d_full.dtype == np.float32 and np.all(np.isfinite(d_full))
  assert np.linalg.norm(d_full - d_crop) < 0.6  # dlib's same-person threshold
  # The weak detection on the flag patch is not the same face.
  if len(astronaut_faces) > 1:
    d_other = detector.descriptor(astronaut, astronaut_faces[1])
    assert np.linalg.norm(d_full - d_other) > np.linalg.norm(d_full - d_crop)


def test_blank_frame_has_no_face(detector):
  blank = np.full((120, 160, 3), 128, np.uint8)
  assert detector.faces(blank) == [] and detector.detect(blank) is None
  with pytest.raises(lmk.NoFaceError, match="No face found"):
    lmk.au_keypoints_for_frame(blank, detector)
  assert issubclass(lmk.NoFaceError, ValueError)


@pytest.mark.parametrize(
  "frame, match",
  [
    (np.zeros((32, 32, 3), np.float32), "uint8.*np.round"),
    (np.zeros((32, 32, 4), np.uint8), r"\(H, W, 3\).*alpha"),
    (np.zeros((2, 32, 32, 3), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((32,), np.uint8), r"\(H, W\)"),
    ([[0, 1], [2, 3]], "NumPy array"),
  ],
)
def test_bad_frames_raise(detector, frame, match):
  with pytest.raises(ValueError, match=match):
    detector.faces(frame)


def test_bad_box_and_face_raise(detector):
  frame = np.zeros((32, 32), np.uint8)
  with pytest.raises(ValueError, match="empty"):
    detector.landmarks(frame, (10, 10, 5, 20))
  with pytest.raises(ValueError, match="4 numbers"):
    detector.landmarks(frame, (1, 2, 3))
  with pytest.raises(ValueError, match="expected a Face"):
    detector.descriptor(frame, (0, 0, 10, 10))
  with pytest.raises(ValueError, match="upsample"):
    lmk.LandmarkDetector(upsample=-1)


def test_models_are_cached_once_per_process():
  assert lmk._shape_predictor() is lmk._shape_predictor()
  assert lmk._face_detector() is lmk._face_detector()
  assert (pathlib.Path(lmk.models_dir()) / lmk.SHAPE_PREDICTOR_FILE).is_file()


def _face(box):
  return lmk.Face(box=box, score=1.0, landmarks=np.zeros((68, 2), np.float32))


def test_crop_box_square_centred_with_margin():
  assert lmk.crop_box(_face((100, 100, 200, 180)), (480, 640, 3), margin=0.0) == (100, 90, 200, 190)
  x0, y0, x1, y1 = lmk.crop_box((100, 100, 200, 200), (480, 640), margin=0.25)
  assert (x1 - x0, y1 - y0) == (150, 150) and (x0 + x1) / 2 == 150 and (y0 + y1) / 2 == 150


def test_crop_box_shifted_inside_and_shrunk_to_frame():
  # Face near the top-left corner, partly outside: the square moves inside, keeping its size.
  assert lmk.crop_box((-20, -10, 60, 70), (200, 300), margin=0.5) == (0, 0, 160, 160)
  # Near the bottom-right corner.
  assert lmk.crop_box((250, 150, 310, 210), (200, 300), margin=0.0) == (240, 140, 300, 200)
  # Wider than the frame's shorter side: shrinks to it and stays square and inside.
  x0, y0, x1, y1 = lmk.crop_box((0, 0, 180, 180), (100, 300), margin=0.5)
  assert (y0, y1) == (0, 100) and x1 - x0 == 100 and 0 <= x0 and x1 <= 300


def test_crop_box_bad_args():
  with pytest.raises(ValueError, match="margin"):
    lmk.crop_box((0, 0, 10, 10), (100, 100), margin=-0.1)
  with pytest.raises(ValueError, match="frame_shape"):
    lmk.crop_box((0, 0, 10, 10), (100,), margin=0.1)
