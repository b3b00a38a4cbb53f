"""The driving clip of a generation, from whatever the user names (`--driving`):

  * a video file (anything ffmpeg reads: .mp4, .avi, .mov, .mkv, .webm) or an animated .gif,
  * a folder of frames (.png, .jpg, .bmp, .tif), ordered by natural sort so `img2` comes before `img10`,
  * a corpus clip `corpus:clip`, e.g. `casme2:sub01/EP02_01f`, read from the TFDS records of `--data_dir`
    (the clip keeps its stored landmarks, onset/apex indices and frame rate).

Each becomes a `me_fomm.data.clip.Clip` with uint8 frames; files and folders carry no landmarks (they are
cropped and landmarked like training clips by `pipeline.prepare_driving`).
"""

from __future__ import annotations

import os

from me_fomm.data import clip as clip_lib
from me_fomm.data.clip import Clip
from me_fomm.generate import video
from me_fomm.generate.video import VideoError


def read_clip(spec: str, data_dir: str | None = None, fps: float | None = None) -> Clip:
  """Reads a driving clip from a video file, a frame folder or a corpus clip spec (see module doc).

  Args:
    spec: path or `corpus:clip`.
    data_dir: TFDS data dir for corpus clips.
    fps: frame rate for frame folders (and override for files); defaults to the file's, else 25.

  Raises:
    VideoError: the clip does not exist, cannot be decoded, or has fewer than two frames.
    ValueError: a corpus clip that is not in the prepared dataset.
  """
  corpus = clip_lib.parse_corpus_spec(spec)
  if corpus is not None:
    if not data_dir:
      raise VideoError(
        f"--driving={spec} names a corpus clip; also give --data_dir "
        "(the folder `me-fomm prepare` wrote the TFDS records to)"
      )
    clip = clip_lib.read_corpus_clip(*corpus, data_dir)
    if fps:
      clip.fps = float(fps)
  elif os.path.isdir(spec):
    clip = Clip(
      frames=video.read_folder(spec),
      fps=float(fps or 25.0),
      name=os.path.basename(os.path.normpath(spec)),
    )
  elif os.path.isfile(spec):
    lower = spec.lower()
    if lower.endswith(video.IMAGE_EXTENSIONS):
      raise VideoError(
        f"driving clip {spec!r} is a single image; a driving clip needs at least two frames "
        "(a video file, a folder of frames, or a corpus clip)"
      )
    if not lower.endswith(video.VIDEO_EXTENSIONS + video.GIF_EXTENSIONS):
      raise VideoError(
        f"driving clip {spec!r}: unknown file type; use one of "
        f"{', '.join(video.VIDEO_EXTENSIONS + video.GIF_EXTENSIONS)} or a folder of frames"
      )
    frames, file_fps = video.read_video(spec)
    clip = Clip(
      frames=frames,
      fps=float(fps or file_fps or 25.0),
      name=os.path.splitext(os.path.basename(spec))[0],
    )
  else:
    raise VideoError(
      f"driving clip {spec!r} not found: give a video file, a folder of frames, "
      "or a corpus clip like casme2:sub01/EP02_01f (with --data_dir)"
    )
  if len(clip) < 2:
    raise VideoError(
      f"driving clip {spec!r} has {len(clip)} frame(s); motion transfer needs at least two "
      "(the first frame is the neutral reference the motion is measured from)"
    )
  return clip
