"""The AU motion model: every default pattern moves the landmarks the way FACS describes, on any face pose;
AUs add, intensity scales, regions restrict; the envelope and timing; model files; bad AU codes."""

import face68
import numpy as np
import pytest

from me_fomm.data.vocab import AU_VOCAB
from me_fomm.prior import au_keypoints, au_motion

X, Y = 0, 1  # face frame: x toward the image's right along the eye line, y down
UP, DOWN, LEFT, RIGHT = (Y, -1), (Y, +1), (X, -1), (X, +1)  # LEFT/RIGHT: the image's
# Subject's right inner brow 21 / left inner brow 22; lip corners 48 (image left) and 54; upper lip centre
# 51, lower lip centre 57, inner lips 62 (upper) and 66 (lower); chin 8; nostril wings 31, 35.
UPPER_LIDS, LOWER_LIDS = (37, 38, 43, 44), (40, 41, 46, 47)

# AU -> [(landmarks, direction)]: the mean face-frame displacement of those landmarks has that sign.
FACS = {
  1: [((21, 22), UP)],  # inner brow raiser
  2: [((17, 18, 25, 26), UP)],  # outer brow raiser
  4: [((21, 22), DOWN), ((21,), RIGHT), ((22,), LEFT)],  # brows down and together
  5: [(UPPER_LIDS, UP)],  # upper lid raiser
  6: [(LOWER_LIDS, UP), ((1, 2, 14, 15), UP)],  # cheek raiser: lower lids and cheeks up
  7: [(LOWER_LIDS, UP), (UPPER_LIDS, DOWN)],  # lid tightener: the eye narrows
  9: [((31, 35), UP), ((21, 22), DOWN)],  # nose wrinkler
  10: [((50, 51, 52), UP)],  # upper lip raiser
  11: [((49, 53), UP), ((49,), LEFT), ((53,), RIGHT)],  # nasolabial deepener
  12: [((48, 54), UP), ((48,), LEFT), ((54,), RIGHT)],  # lip corners up and outwards
  13: [((48, 54), UP)],  # sharp lip puller
  14: [((48,), LEFT), ((54,), RIGHT)],  # dimpler: corners pulled sideways
  15: [((48, 54), DOWN)],  # lip corner depressor
  16: [((56, 57, 58), DOWN)],  # lower lip depressor
  17: [((8,), UP), ((57,), UP)],  # chin raiser
  18: [((48,), RIGHT), ((54,), LEFT)],  # lip pucker: corners toward the middle
  20: [((48,), LEFT), ((54,), RIGHT)],  # lip stretcher
  21: [((8,), DOWN), ((48, 54), DOWN)],  # neck tightener
  22: [((48,), RIGHT), ((54,), LEFT), ((62,), UP), ((66,), DOWN)],  # lip funneler
  23: [((51,), DOWN), ((57,), UP)],  # lip tightener: lips narrowed
  24: [((62,), DOWN), ((66,), UP)],  # lip presser
  25: [((66,), DOWN), ((62,), UP)],  # lips part
  26: [((8,), DOWN), ((57, 66), DOWN)],  # jaw drop
  27: [((8,), DOWN), ((66,), DOWN), ((62,), UP)],  # mouth stretch
  28: [((51,), DOWN), ((57,), UP)],  # lip suck
  31: [((3,), LEFT), ((13,), RIGHT)],  # jaw clencher: the jaw contour bulges
  38: [((31,), LEFT), ((35,), RIGHT)],  # nostril dilator
  39: [((31,), RIGHT), ((35,), LEFT)],  # nostril compressor
  43: [(UPPER_LIDS, DOWN), (LOWER_LIDS, UP)],  # eyes closed
  45: [(UPPER_LIDS, DOWN)],  # blink
  61: [(UPPER_LIDS, RIGHT)],  # eyes turn left: the subject's left is the image's right
  62: [(UPPER_LIDS, LEFT)],
  63: [(UPPER_LIDS, UP)],
  64: [(UPPER_LIDS, DOWN)],
}
STILL = (0, 16, 27, 28, 29, 30, 39, 42)  # what au_fit aligns frames on


def test_the_default_model_covers_the_vocabulary():
  assert au_motion.default_model().aus == tuple(sorted(AU_VOCAB)) == tuple(sorted(FACS))


@pytest.mark.parametrize("au", sorted(FACS))
def test_each_default_pattern_moves_the_landmarks_the_facs_way(au):
  model = au_motion.default_model()
  # A tilted, off-centre face: the pattern must follow the face's own axes.
  face = face68.face(iod=80.0, centre=(120.0, 100.0), angle_deg=12.0)
  disp = model.displacement([au], face)
  local = au_motion.to_face(disp, face)  # back in the face frame, in IODs
  for landmarks, (axis, sign) in FACS[au]:
    moved = local[list(landmarks), axis].mean()
    assert np.sign(moved) == sign, (au, landmarks, axis, moved)
  np.testing.assert_allclose(local[list(STILL)], 0.0, atol=1e-12)
  # At intensity 1 the largest landmark moves a few percent of the eye distance, like a micro-expression.
  assert 0.01 < np.linalg.norm(local, axis=1).max() < 0.1
  # Bilateral units are mirror-symmetric; eye turns are each other's mirror.
  mirror = model.patterns[{61: 62, 62: 61}.get(au, au)][au_keypoints.MIRROR_68] * [-1, 1]
  np.testing.assert_allclose(model.patterns[au], mirror, atol=1e-12)


def test_aus_add_intensity_scales_regions_restrict():
  model = au_motion.default_model()
  face = face68.face(angle_deg=-5.0)
  d4, d7, d47 = (model.displacement(a, face) for a in ([4], [7], [4, 7]))
  np.testing.assert_allclose(d47, d4 + d7, atol=1e-12)
  np.testing.assert_allclose(model.displacement([4, 7], face, intensity=0.5), d47 / 2, atol=1e-12)
  # Twice the face, twice the pixels: the pattern is in inter-ocular distances.
  big = face68.face(iod=120.0, angle_deg=-5.0)
  np.testing.assert_allclose(model.displacement([4], big), 2 * d4, atol=1e-9)
  # Regions keep only their landmarks moving.
  mouth = model.displacement([12, 4], face, regions=["mouth"])
  assert np.abs(mouth[17:27]).max() == 0 and np.abs(mouth[48:68]).max() > 0
  np.testing.assert_allclose(mouth[48:68], model.displacement([12], face)[48:68])
  for name, (lms, kps) in au_keypoints.REGIONS.items():
    assert set(au_keypoints.AU_LANDMARK_INDICES[list(kps)]) <= set(lms) | {41, 46}, name
  every = np.concatenate([au_keypoints.REGIONS[n][0] for n in au_keypoints.REGIONS])
  assert sorted(every) == list(range(68))  # each landmark in exactly one region
  assert au_keypoints.region_keypoints(list(au_keypoints.REGIONS)).all()
  assert au_keypoints.region_keypoints("mouth,brows").sum() == 9
  with pytest.raises(ValueError, match="choose from brows, eyes, nose, cheeks, mouth"):
    au_keypoints.parse_regions("lips")


def test_timing_envelope_and_track():
  assert au_motion.timing(300, 100) == (30, 0, 13, 29)
  assert au_motion.timing(300, 25, apex_fraction=0.3) == (8, 0, 2, 7)
  with pytest.raises(ValueError, match="at least 3"):
    au_motion.timing(20, 100)
  curve = au_motion.envelope(30, 0, 13, 29)
  assert curve[0] == 0 and curve[13] == 1 and curve[29] == pytest.approx(0, abs=1e-12)
  assert np.all(np.diff(curve[:14]) > 0) and np.all(np.diff(curve[13:]) < 0)
  # Still frames before the onset and after the offset (the corpora's clips have them).
  padded = au_motion.envelope(12, 2, 5, 9)
  assert np.all(padded[:3] == 0) and np.all(padded[9:] == 0)
  model = au_motion.default_model()
  face = face68.face()
  track = model.track(face, (1, 2), curve, intensity=2.0)
  assert track.shape == (30, 68, 2) and track.dtype == np.float32
  np.testing.assert_allclose(track[0], face, atol=1e-4)
  np.testing.assert_allclose(track[13] - face, model.displacement((1, 2), face, 2.0), atol=1e-4)


def test_au_codes_and_unknown_units():
  assert au_motion.parse_aus("4+7") == (4, 7) == au_motion.parse_aus("AU4 + au7")
  assert au_motion.parse_aus("12,6,12") == (12, 6)
  with pytest.raises(ValueError, match="'x' is not an action unit"):
    au_motion.parse_aus("4+x")
  with pytest.raises(ValueError, match="empty"):
    au_motion.parse_aus("")
  with pytest.raises(
    ValueError, match=r"unknown action unit\(s\) 3, 99; the vocabulary .* 1, 2, 4, 5"
  ):
    au_motion.default_model().check([4, 99, 3])


def test_model_file_round_trip_and_bad_files(tmp_path):
  model = au_motion.default_model()
  path = model.save(str(tmp_path / "m" / "au.json"))
  back = au_motion.load(path)
  assert back.aus == model.aus and back.scale == model.scale
  np.testing.assert_allclose(back.patterns[12], model.patterns[12])
  assert au_motion.load(None).source == "default"
  with pytest.raises(FileNotFoundError, match="fit-au"):
    au_motion.load(str(tmp_path / "none.json"))
  (tmp_path / "bad.json").write_text('{"format": "something else"}')
  with pytest.raises(ValueError, match="not an AU model file"):
    au_motion.load(str(tmp_path / "bad.json"))
  fitted = au_motion.AUModel(patterns={12: model.patterns[12]}, scale=1.0, source="fit")
  with pytest.raises(ValueError, match=r"not in the AU model \(fit; it has 12\)"):
    fitted.check([4])
