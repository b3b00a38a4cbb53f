"""The driving clip of a generation, from whatever the user names (`--driving`):

  * a video file (anything ffmpeg reads: .mp4, .avi, .mov, .mkv, .webm) or an animated .gif,
  * a folder of frames (.png, .jpg, .bmp, .tif), ordered by natural sort so `img2` comes before `img10`,
  * a corpus clip `corpus:clip`, e.g. `casme2:sub01/EP02_01f`, read from the TFDS records of `--data_dir`
    (the clip keeps its stored landmarks, onset/apex indices and frame rate),
  * FACS action units (`--au=4+7`, `AuMotion`): no frames at all; the target's own landmarks moved by the AU
    motion model (`me_fomm.prior.au_motion`) over duration x fps frames.

Each becomes a `me_fomm.data.clip.Clip` with uint8 frames; files and folders carry no landmarks (they are
cropped and landmarked like training clips by `pipeline.prepare_driving`). An AU clip is made for one
target (its landmarks are the target's): its frames are the still target and `landmark_driven` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from me_fomm.data import clip as clip_lib
from me_fomm.data.clip import Clip
from me_fomm.generate import video
from me_fomm.generate.video import VideoError
from me_fomm.prior import au_motion

log = logging.getLogger(__name__)
DEFAULT_AU_FPS = 100.0


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


@dataclasses.dataclass(frozen=True)
class AuMotion:
  """A micro-expression given as FACS action units: which AUs, how strong, with what timing.

  Attributes:
    aus: AU numbers, checked against `model`.
    model: the AU motion model (the default FACS patterns, or a fitted `--au_model` file).
    intensity: scales the patterns (1 = the model's).
    frames, onset, apex, offset: the timing (`au_motion.timing`, or a recorded clip's).
    fps: frame rate of the clip.
  """

  aus: tuple
  model: au_motion.AUModel
  intensity: float
  frames: int
  onset: int
  apex: int
  offset: int
  fps: float

  @classmethod
  def parse(cls, au, au_model=None, intensity=1.0, duration_ms=None, fps=None, timing=None):
    """From the options (`--au`, `--au_model` file or an AUModel, `--intensity`, `--duration_ms`,
    `--fps`) or a recorded timing (frames, onset, apex, offset). Raises ValueError for unknown AUs."""
    model = au_model if isinstance(au_model, au_motion.AUModel) else au_motion.load(au_model)
    aus = model.check(au_motion.parse_aus(au))
    if not (np.isfinite(intensity) and intensity > 0):
      raise ValueError(f"--intensity must be > 0 (1 = the AU model's), got {intensity}")
    fps = float(fps or DEFAULT_AU_FPS)
    if timing is None:
      duration = float(duration_ms or model.duration_ms)
      timing = au_motion.timing(duration, fps, model.apex_fraction)
      if duration > au_motion.MICRO_EXPRESSION_MS:
        log.warning(
          "--duration_ms=%g: longer than a micro-expression (under %g ms in all)",
          duration,
          au_motion.MICRO_EXPRESSION_MS,
        )
    au_motion.envelope(*timing)  # checks onset < apex < offset < frames
    return cls(aus, model, float(intensity), *(int(v) for v in timing), fps)

  @property
  def name(self) -> str:
    return "au" + "+".join(str(a) for a in self.aus)

  def clip(self, target, regions=None) -> Clip:
    """The AU clip of a prepared target (`image` (S, S, 3) uint8 and `landmarks` (68, 2) px)."""
    if target.landmarks is None:
      raise ValueError(
        "AU-driven generation moves the target's own landmarks: the target needs dlib landmarks "
        "(do not pass --no_crop with a photo dlib cannot find a face in)"
      )
    curve = au_motion.envelope(self.frames, self.onset, self.apex, self.offset)
    track = self.model.track(target.landmarks, self.aus, curve, self.intensity, regions)
    image = np.asarray(target.image)
    return Clip(
      frames=np.broadcast_to(image, (self.frames,) + image.shape),
      fps=self.fps,
      name=self.name,
      landmarks=track,
      onset=self.onset,
      apex=self.apex,
      offset=self.offset,
      action_units=self.aus,
      landmark_driven=True,
    )
