"""Video input and output: driving clips in, mp4 and GIF out, side-by-side and keypoint overlays.

A driving clip can be
  * a video file (anything ffmpeg reads: .mp4, .avi, .mov, .mkv, .webm) or an animated .gif,
  * a folder of frames (.png, .jpg, .bmp, .tif), ordered by natural sort so `img2` comes before `img10`,
  * a corpus clip `corpus:clip`, e.g. `casme2:sub01/EP02_01f`, read from the TFDS records of `--data_dir`
    (the clip keeps its stored landmarks, onset/apex indices and frame rate).

Frames are uint8 (T, H, W, 3) RGB throughout this module; conversion to float32 [0, 1] happens where the model
is called.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
GIF_EXTENSIONS = (".gif",)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Browsers and most viewers clamp GIF frame delays below 20 ms (the format counts in centiseconds and
# 1-cs delays are treated as "too fast" and slowed to 100 ms), so a GIF cannot play faster than 50 fps.
MAX_GIF_FPS = 50.0


class VideoError(ValueError):
  """A driving clip or an output path that cannot be used; the message says what to do."""


@dataclasses.dataclass
class Clip:
  """A decoded clip: frames plus whatever is known about them.

  Attributes:
    frames: uint8 (T, H, W, 3) RGB.
    fps: frames per second.
    name: a short name for output files (file stem, folder name or corpus clip id).
    landmarks: optional float32 (T, 68, 2) dlib landmarks in pixels of `frames`.
    onset: index of the onset frame (the neutral frame the motion starts from).
    apex: index of the apex frame, or None when unknown.
    label: emotion class name when known (corpus clips), else None.
    ground_truth: optional uint8 (T, H, W, 3): the same motion on another identity (synthetic_me).
    ground_truth_landmarks: optional (T, 68, 2) landmarks of `ground_truth` (synthetic_me: exact).
    corpus, clip_id, subject: where a corpus clip came from ('' for files).
  """

  frames: np.ndarray
  fps: float
  name: str
  landmarks: np.ndarray | None = None
  onset: int = 0
  apex: int | None = None
  label: str | None = None
  ground_truth: np.ndarray | None = None
  ground_truth_landmarks: np.ndarray | None = None
  corpus: str = ""
  clip_id: str = ""
  subject: str = ""

  def __len__(self) -> int:
    return int(self.frames.shape[0])


def natural_key(name: str):
  return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def to_rgb_uint8(image: np.ndarray, where: str = "image") -> np.ndarray:
  """Any decoded image (gray, RGB, RGBA; uint8, uint16 or float in [0, 1]) -> uint8 (H, W, 3)."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise VideoError(
      f"{where}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}"
    )
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  if image.shape[-1] == 4:
    image = image[..., :3]
  if image.dtype == np.uint8:
    return np.ascontiguousarray(image)
  if image.dtype == np.uint16:
    return (image // 257).astype(np.uint8)
  if np.issubdtype(image.dtype, np.floating):
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  if np.issubdtype(image.dtype, np.integer) or image.dtype == bool:
    return np.clip(image, 0, 255).astype(np.uint8)
  raise VideoError(f"{where}: unsupported pixel type {image.dtype}")


def read_image(path: str) -> np.ndarray:
  """Reads one image file as uint8 (H, W, 3) RGB; clear error when it cannot be read."""
  import imageio.v2 as imageio

  if not os.path.isfile(path):
    raise VideoError(f"image {path!r} does not exist (or is not a file)")
  try:
    image = imageio.imread(path)
  except Exception as e:  # imageio raises many types; all mean "not an image we can decode".
    raise VideoError(f"cannot read image {path!r}: {e}. Use a PNG or JPEG file.") from e
  if image.ndim == 3 and image.shape[0] > 1 and image.shape[-1] not in (1, 3, 4):
    raise VideoError(f"{path!r} holds several frames; give a single photo as the target")
  return to_rgb_uint8(image, where=path)


def _read_folder(path: str) -> np.ndarray:
  names = sorted(
    (n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")),
    key=natural_key,
  )
  if not names:
    raise VideoError(
      f"frame folder {path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
      "give a folder of frames, a video file or a corpus clip like casme2:sub01/EP02_01f"
    )
  frames = [read_image(os.path.join(path, n)) for n in names]
  shapes = {f.shape for f in frames}
  if len(shapes) != 1:
    raise VideoError(f"frames in {path!r} differ in size ({sorted(shapes)}); all frames must match")
  return np.stack(frames)


def _read_video_file(path: str) -> tuple[np.ndarray, float | None]:
  import imageio.v2 as imageio

  lower = path.lower()
  try:
    if lower.endswith(GIF_EXTENSIONS):
      reader = imageio.get_reader(path, format="GIF")
      meta = reader.get_meta_data()
      frames = [to_rgb_uint8(f, where=path) for f in reader]
      reader.close()
      duration_ms = meta.get("duration")
      fps = 1000.0 / duration_ms if duration_ms else None
    else:
      reader = imageio.get_reader(path, format="FFMPEG")
      fps = reader.get_meta_data().get("fps")
      frames = [to_rgb_uint8(f, where=path) for f in reader]
      reader.close()
  except Exception as e:
    raise VideoError(
      f"cannot decode video {path!r}: {type(e).__name__}: {e}. "
      "Check that the file is a complete video (ffmpeg must be able to play it)."
    ) from e
  if not frames:
    raise VideoError(f"video {path!r} decoded to zero frames; is the file empty or truncated?")
  return np.stack(frames), fps


def parse_corpus_spec(spec: str) -> tuple[str, str] | None:
  """`casme2:sub01/EP02_01f` -> ('casme2', 'sub01/EP02_01f'); None when `spec` is not of that form.

  A Windows drive letter (`C:\\...`) or an existing path is never taken for a corpus clip.
  """
  if ":" not in spec or os.path.exists(spec):
    return None
  corpus, clip = spec.split(":", 1)
  if len(corpus) <= 1 or not clip or not re.fullmatch(r"[A-Za-z0-9_/.\-]+", corpus):
    return None
  return corpus, clip


def read_corpus_clip(corpus: str, clip: str, data_dir: str | None) -> Clip:
  """Finds `clip` (`subject/clip_id` or just `clip_id`) in a prepared corpus and decodes it."""
  if not data_dir:
    raise VideoError(
      f"--driving={corpus}:{clip} names a corpus clip; also give --data_dir "
      "(the folder `me-fomm prepare` wrote the TFDS records to)"
    )
  from me_fomm.data import sources

  tried = []
  for split in ("test", "train", "validation"):
    try:
      source = sources.load(corpus, data_dir, split)
    except Exception as e:  # a split that was not prepared is not an error while others remain
      tried.append(f"{split}: {e}")
      continue
    for i in range(len(source)):
      record = source[i]
      if _clip_matches(record, clip):
        return clip_from_record(record)
  raise VideoError(
    f"corpus clip {clip!r} not found in {corpus!r} under {data_dir!r} "
    f"(give it as subject/clip_id, e.g. sub01/EP02_01f). Looked in: "
    + ("; ".join(tried) if tried else "every prepared split")
  )


def _as_str(value) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.shape == ():
    return _as_str(value.item())
  return str(value)


def _clip_matches(record: dict, wanted: str) -> bool:
  subject = _as_str(record.get("subject", ""))
  clip_id = _as_str(record.get("clip_id", ""))
  return wanted in (clip_id, f"{subject}/{clip_id}")


def decode_frames(frames) -> np.ndarray:
  """Corpus `frames` (encoded PNG bytes per frame, or already decoded arrays) -> uint8 (T, H, W, 3)."""
  import io

  import imageio.v2 as imageio

  if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4:
    return frames
  out = []
  for f in frames:
    if isinstance(f, (bytes, np.bytes_)):
      out.append(to_rgb_uint8(imageio.imread(io.BytesIO(bytes(f)), format="PNG")))
    else:
      out.append(to_rgb_uint8(np.asarray(f)))
  return np.stack(out)


def clip_from_record(record: dict) -> Clip:
  """A corpus record (DESIGN.md 'Data') -> Clip with its landmarks, onset/apex and fps."""
  frames = decode_frames(record["frames"])
  subject = _as_str(record.get("subject", ""))
  clip_id = _as_str(record.get("clip_id", ""))
  # Some corpora's ids already carry the subject (CASME II: 'sub01/EP02_01f').
  name = clip_id if not subject or clip_id.startswith(subject) else f"{subject}_{clip_id}"
  gt = record.get("ground_truth_frames")
  label = record.get("label")
  if label is not None and not isinstance(label, (str, bytes)):
    # Stored as an index into the class names (DESIGN.md: negative/positive/surprise/other).
    from me_fomm_datasets.common.features import LABELS

    label = LABELS[int(label)]
  gt_lms = record.get("ground_truth_landmarks")
  return Clip(
    frames=frames,
    fps=float(record.get("fps", 25.0) or 25.0),
    name=name.replace("/", "_"),
    corpus=_as_str(record.get("corpus", "")),
    clip_id=clip_id,
    subject=subject,
    landmarks=np.asarray(record["landmarks"], np.float32)
    if record.get("landmarks") is not None
    else None,
    onset=int(record.get("onset", 0)),
    apex=int(record["apex"]) if record.get("apex") is not None else None,
    label=_as_str(label) if label is not None else None,
    ground_truth=decode_frames(gt) if gt is not None and len(gt) else None,
    ground_truth_landmarks=None if gt_lms is None else np.asarray(gt_lms, np.float32),
  )


def read_clip(spec: str, data_dir: str | None = None, fps: float | None = None) -> Clip:
  """Reads a driving clip from a video file, a frame folder or a corpus clip spec (see module doc).

  Args:
    spec: path or `corpus:clip`.
    data_dir: TFDS data dir for corpus clips.
    fps: frame rate for frame folders (and override for files); defaults to the file's, else 25.

  Raises:
    VideoError: the clip does not exist, cannot be decoded, or has fewer than two frames.
  """
  corpus = parse_corpus_spec(spec)
  if corpus is not None:
    clip = read_corpus_clip(*corpus, data_dir)
    if fps:
      clip.fps = float(fps)
  elif os.path.isdir(spec):
    clip = Clip(
      frames=_read_folder(spec),
      fps=float(fps or 25.0),
      name=os.path.basename(os.path.normpath(spec)),
    )
  elif os.path.isfile(spec):
    lower = spec.lower()
    if lower.endswith(IMAGE_EXTENSIONS):
      raise VideoError(
        f"driving clip {spec!r} is a single image; a driving clip needs at least two frames "
        "(a video file, a folder of frames, or a corpus clip)"
      )
    if not lower.endswith(VIDEO_EXTENSIONS + GIF_EXTENSIONS):
      raise VideoError(
        f"driving clip {spec!r}: unknown file type; use one of "
        f"{', '.join(VIDEO_EXTENSIONS + GIF_EXTENSIONS)} or a folder of frames"
      )
    frames, file_fps = _read_video_file(spec)
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


def _even(frames: np.ndarray) -> np.ndarray:
  """Pads H and W to even sizes with edge pixels: H.264 in yuv420p needs even dimensions."""
  t, h, w, c = frames.shape
  ph, pw = h % 2, w % 2
  if ph or pw:
    frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
  return frames


def as_uint8_frames(frames) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise VideoError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
  if frames.dtype != np.uint8:
    frames = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  return frames


def write_mp4(path: str, frames, fps: float) -> None:
  """Writes H.264 mp4 (yuv420p, plays everywhere) at `fps`; frames uint8 or float [0, 1]."""
  import imageio.v2 as imageio

  frames = _even(as_uint8_frames(frames))
  writer = imageio.get_writer(
    path,
    format="FFMPEG",
    fps=float(fps),
    codec="libx264",
    quality=8,
    pixelformat="yuv420p",
    macro_block_size=1,
    ffmpeg_log_level="error",
  )
  try:
    for f in frames:
      writer.append_data(f)
  finally:
    writer.close()


def gif_fps(fps: float) -> float:
  return min(float(fps), MAX_GIF_FPS)


def write_gif(path: str, frames, fps: float) -> float:
  """Writes a looping GIF; returns the frame rate actually used (at most MAX_GIF_FPS, see above).

  Pillow stores identical consecutive frames once with their delays added, so the play time is exact
  but a still stretch reads back as fewer frames.
  """
  import imageio.v2 as imageio

  frames = as_uint8_frames(frames)
  used = gif_fps(fps)
  # imageio's pillow GIF writer takes the per-frame duration in milliseconds.
  imageio.mimsave(path, list(frames), format="GIF", duration=1000.0 / used, loop=0)
  return used


def read_frames(path: str) -> np.ndarray:
  """Reads back a written mp4/GIF as uint8 (T, H, W, 3) (used by tests and the report)."""
  return _read_video_file(path)[0]


def resize_frames(frames: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Area/bilinear resize of uint8 (T, H, W, 3) frames to size x size (or (h, w))."""
  import cv2

  h, w = (size, size) if isinstance(size, int) else size
  if frames.shape[1:3] == (h, w):
    return frames
  interp = cv2.INTER_AREA if frames.shape[1] > h else cv2.INTER_LINEAR
  return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


def side_by_side(*videos: np.ndarray, gap: int = 2) -> np.ndarray:
  """Concatenates videos left to right (driving | target | generated), resized to the first's height.

  A video of one frame (a still target) is repeated over time.
  """
  videos = [as_uint8_frames(v if np.asarray(v).ndim == 4 else np.asarray(v)[None]) for v in videos]
  t = max(v.shape[0] for v in videos)
  h = videos[0].shape[1]
  panels = []
  for v in videos:
    if v.shape[0] == 1:
      v = np.repeat(v, t, axis=0)
    if v.shape[0] != t:
      raise VideoError(f"side_by_side: videos have {v.shape[0]} and {t} frames")
    if v.shape[1] != h:
      w = int(round(v.shape[2] * h / v.shape[1]))
      v = resize_frames(v, (h, w))
    panels.append(v)
    if gap:
      panels.append(np.full((t, h, gap, 3), 255, np.uint8))
  return np.concatenate(panels[:-1] if gap else panels, axis=2)


def keypoint_colors(num: int) -> np.ndarray:
  """Distinct RGB colours, one per keypoint (the original visualiser's gist_rainbow)."""
  from matplotlib import colormaps

  cmap = colormaps["gist_rainbow"]
  return (np.array([cmap(i / max(num, 1))[:3] for i in range(num)]) * 255).astype(np.uint8)


def draw_keypoints(
  frames: np.ndarray, keypoints: np.ndarray, radius: int | None = None
) -> np.ndarray:
  """Draws keypoints on frames.

  Args:
    frames: uint8 or float (T, H, W, 3).
    keypoints: (T, K, 2) or (K, 2) in normalised [-1, 1] coordinates (x, y) (DESIGN.md convention
      x = 2 i / (W - 1) - 1).
    radius: dot radius in pixels; default about 1.5% of the frame width.

  Returns:
    uint8 (T, H, W, 3) copy with filled dots.
  """
  import cv2

  frames = as_uint8_frames(frames).copy()
  kp = np.asarray(keypoints, np.float32)
  if kp.ndim == 2:
    kp = np.broadcast_to(kp, (frames.shape[0],) + kp.shape)
  if kp.shape[0] != frames.shape[0] or kp.shape[-1] != 2:
    raise VideoError(f"draw_keypoints: keypoints {kp.shape} do not match frames {frames.shape}")
  t, h, w, _ = frames.shape
  radius = radius or max(1, int(round(w * 0.015)))
  colors = keypoint_colors(kp.shape[1])
  px = (kp + 1.0) * 0.5 * np.array([w - 1, h - 1], np.float32)
  for i in range(t):
    for k in range(kp.shape[1]):
      x, y = px[i, k]
      if np.isfinite(x) and np.isfinite(y):
        cv2.circle(
          frames[i],
          (int(round(x)), int(round(y))),
          radius,
          tuple(int(c) for c in colors[k]),
          thickness=-1,
          lineType=cv2.LINE_AA,
        )
  return frames


def to_float(frames: np.ndarray) -> np.ndarray:
  """uint8 -> float32 [0, 1]."""
  return np.asarray(frames, np.float32) / 255.0


def write_outputs(
  out_dir: str, stem: str, frames, fps: float, extra: Sequence[tuple[str, np.ndarray]] = ()
) -> dict:
  """Writes `stem.mp4` and `stem.gif` (plus `stem_<suffix>.mp4/.gif` for each extra) into out_dir.

  Returns {'mp4': path, 'gif': path, ...} with paths relative to nothing (absolute as given).
  """
  paths = {}
  for suffix, video in (("", frames),) + tuple(extra):
    base = os.path.join(out_dir, f"{stem}{'_' + suffix if suffix else ''}")
    write_mp4(base + ".mp4", video, fps)
    write_gif(base + ".gif", video, fps)
    paths[(suffix or "generated") + "_mp4"] = base + ".mp4"
    paths[(suffix or "generated") + "_gif"] = base + ".gif"
  return paths
