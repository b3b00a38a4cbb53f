"""Video I/O, driving clips from files and folders, overlays and the all-or-nothing output folder."""

import os

import imageio.v2 as imageio
import numpy as np
import pytest

from me_fomm.generate import driving, pipeline, video


def _frames(t=5, h=32, w=32):
  # Smooth content (a colour gradient with a moving block): H.264 in yuv420p keeps it close.
  y, x = np.mgrid[0:h, 0:w]
  base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1)
  out = np.repeat(base[None].astype(np.uint8), t, axis=0)
  for i in range(t):
    out[i, 4:12, 2 + 2 * i : 10 + 2 * i] = 255
  return out


def test_mp4_and_gif_round_trip(tmp_path):
  frames = _frames(t=7, h=30, w=34)
  mp4, gif = str(tmp_path / "a.mp4"), str(tmp_path / "a.gif")
  video.write_mp4(mp4, frames, fps=10)
  assert video.write_gif(gif, frames, fps=10) == 10
  back = video.read_frames(mp4)
  assert back.shape == (7, 30, 34, 3)
  assert np.abs(back.astype(float) - frames).mean() < 12  # lossy, but the same picture
  clip = driving.read_clip(mp4)
  assert len(clip) == 7 and clip.fps == pytest.approx(10) and clip.name == "a"
  g = driving.read_clip(gif)
  assert g.frames.shape == (7, 30, 34, 3) and g.fps == pytest.approx(10)
  # High frame rates (CASME II: 200 fps) are kept in the mp4, capped in the GIF.
  assert video.write_gif(gif, frames, fps=200) == video.MAX_GIF_FPS


def test_frame_folder_natural_order(tmp_path):
  frames = _frames(t=11)
  for i, f in enumerate(frames):
    imageio.imwrite(tmp_path / f"img{i + 1}.png", f)
  clip = driving.read_clip(str(tmp_path), fps=200)
  assert clip.fps == 200
  np.testing.assert_array_equal(clip.frames, frames)  # img10 after img9, not after img1


def test_bad_driving_clips(tmp_path):
  one = tmp_path / "one"
  one.mkdir()
  imageio.imwrite(one / "f0.png", _frames(1)[0])
  with pytest.raises(video.VideoError, match="at least two"):
    driving.read_clip(str(one))
  imageio.imwrite(tmp_path / "still.png", _frames(1)[0])
  with pytest.raises(video.VideoError, match="single image"):
    driving.read_clip(str(tmp_path / "still.png"))
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
  with pytest.raises(video.VideoError, match="cannot decode video"):
    driving.read_clip(str(broken))
  with pytest.raises(video.VideoError, match="not found"):
    driving.read_clip(str(tmp_path / "nothing.mp4"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(video.VideoError, match="holds no images"):
    driving.read_clip(str(empty))
  with pytest.raises(video.VideoError, match="--data_dir"):
    driving.read_clip("casme2:sub01/EP02_01f", data_dir=None)


def test_side_by_side_and_keypoints():
  drv = _frames(t=3, h=32, w=32)
  target = np.zeros((64, 64, 3), np.float32)  # a still, other size: repeated and resized
  out = video.side_by_side(drv, target, drv, gap=2)
  assert out.shape == (3, 32, 32 * 3 + 4, 3)
  blank = np.zeros((2, 21, 21, 3), np.uint8)
  kp = np.array([[[-1.0, -1.0], [0.0, 0.0]]] * 2)  # top-left corner and centre
  drawn = video.draw_keypoints(blank, kp, radius=1)
  colors = video.keypoint_colors(2)
  np.testing.assert_array_equal(drawn[0, 10, 10], colors[1])
  np.testing.assert_array_equal(drawn[1, 0, 0], colors[0])
  assert drawn[0, 5, 15].sum() == 0


def test_staged_output_all_or_nothing(tmp_path):
  out = tmp_path / "out"
  with pytest.raises(RuntimeError):
    with pipeline.staged_output(str(out)) as tmp:
      open(os.path.join(tmp, "half.mp4"), "w").close()
      raise RuntimeError("failed midway")
  assert not out.exists() and os.listdir(tmp_path) == []
  with pipeline.staged_output(str(out)) as tmp:
    open(os.path.join(tmp, "a.mp4"), "w").close()
  assert os.listdir(out) == ["a.mp4"]
  with pytest.raises(pipeline.OutputExistsError, match="--overwrite"):
    with pipeline.staged_output(str(out)):
      pass
  with pipeline.staged_output(str(out), overwrite=True) as tmp:
    open(os.path.join(tmp, "b.mp4"), "w").close()
  assert os.listdir(out) == ["b.mp4"] and sorted(os.listdir(tmp_path)) == ["out"]
