"""Video files in and out: read images, videos and frame folders, write mp4 and GIF, side-by-side
strips and keypoint overlays.

Frames are uint8 (T, H, W, 3) RGB throughout this module; conversion to float32 [0, 1] happens where the model
is called. Driving clips (a file, a folder or a corpus clip) become `me_fomm.data.clip.Clip`s in
`me_fomm.generate.driving`.
"""

from __future__ import annotations

import errno
import fractions
import os
import re
import subprocess
from typing import Sequence

import numpy as np

from me_fomm.data import images

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
GIF_EXTENSIONS = (".gif",)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Browsers and most viewers clamp GIF frame delays below 20 ms (the format counts in centiseconds and
# 1-cs delays are treated as "too fast" and slowed to 100 ms), so a GIF cannot play faster than 50 fps.
MAX_GIF_FPS = 50.0


# Constant rate factor of the H.264 mp4s (0 lossless .. 51 worst): what imageio's quality=8 gave before,
# high enough to keep sub-pixel micro-expression motion visible.
MP4_CRF = 10


class VideoError(ValueError):
  """A driving clip or an output path that cannot be used; the message says what to do."""


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = tuple(os.strerror(n) for n in _DISK_FULL_ERRNOS)


def disk_full(e: BaseException) -> bool:
  """Whether `e` (or an error behind it) is a full disk or quota: an OSError's errno, or ffmpeg's text."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
      return True
    if any(text in str(e) for text in _DISK_FULL_TEXTS):
      return True
    e = e.__cause__ or e.__context__
  return False


# ffmpeg runs as a child process started here, never through imageio's FFMPEG plugin: imageio-ffmpeg
# passes a `preexec_fn`, which makes Python fork and run Python code in the child of a multithreaded
# (JAX) process, a deadlock risk that JAX warns about ("os.fork() was called"). Without a preexec_fn
# the fork and exec happen in C and no Python runs in the child.


def ffmpeg_exe() -> str:
  """The ffmpeg binary (imageio-ffmpeg's bundled one, or $IMAGEIO_FFMPEG_EXE)."""
  try:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
  except (ImportError, RuntimeError) as e:
    raise VideoError(
      f"no ffmpeg found ({e}); install imageio-ffmpeg or set IMAGEIO_FFMPEG_EXE"
    ) from e


def _ffmpeg_detail(stderr: bytes, returncode: int) -> str:
  """ffmpeg's error lines as one line: without `[muxer @ 0x..]` prefixes, repeats and the final
  "Conversion failed!"."""
  lines = []
  for line in stderr.decode(errors="replace").splitlines():
    line = re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip())
    if (
      line
      and line not in lines
      and not line.startswith(("Last message repeated", "Conversion failed"))
    ):
      lines.append(line)
  detail = "; ".join(lines[:3]).rstrip(".") or f"exit status {returncode}"
  return detail if len(detail) <= 300 else detail[:297] + "..."


def _run_ffmpeg(args: list, stdin_data=None) -> tuple[int, bytes, bytes]:
  """(exit status, stdout, stderr) of ffmpeg with `args`; stdin_data is piped in (None: no stdin)."""
  cmd = [ffmpeg_exe(), "-hide_banner", "-nostats"] + args
  try:
    proc = subprocess.Popen(
      cmd,
      stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
    )
  except OSError as e:
    raise VideoError(f"cannot start ffmpeg {cmd[0]!r}: {e}") from e
  try:
    out, err = proc.communicate(stdin_data)
  except BaseException:  # Ctrl-C or a failed pipe: no ffmpeg left behind
    proc.kill()
    proc.wait()
    raise
  return proc.returncode, out, err


def _ffmpeg_fps(stderr: bytes) -> float | None:
  """The first input video stream's frame rate from ffmpeg's header lines (`25 fps`, `1k fps`, `tbr`)."""
  text = stderr.decode(errors="replace")
  text = text.split("Output #0", 1)[0]
  for line in text.splitlines():
    if re.match(r"\s*Stream #0:\d+.*: Video: ", line):
      for unit in ("fps", "tbr"):
        m = re.search(rf"(\d+(?:\.\d+)?)(k?) {unit}\b", line)
        if m:
          value = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
          if value > 0:
            return value
      return None
  return None


_PLAYABLE = "Check that the file is a complete video (ffmpeg must be able to play it)."


def _read_ffmpeg(path: str) -> tuple[np.ndarray, float | None]:
  """Decodes the first video stream as PPM frames: each carries its size, read without parsing ffmpeg's
  log (only the frame rate comes from there)."""
  # "file:" keeps a name with a colon or a leading dash a file name for ffmpeg.
  args = ["-nostdin", "-i", "file:" + path, "-map", "0:v:0", "-f", "image2pipe", "-c:v", "ppm"]
  returncode, data, err = _run_ffmpeg(args + ["-pix_fmt", "rgb24", "-"])
  if returncode != 0:
    detail = _ffmpeg_detail(err, returncode)
    raise VideoError(f"cannot decode video {path!r}: ffmpeg: {detail}. {_PLAYABLE}")
  if not data:
    return np.zeros((0, 0, 0, 3), np.uint8), _ffmpeg_fps(err)
  m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
  if m is None:
    raise VideoError(f"cannot decode video {path!r}: ffmpeg wrote no RGB frames. {_PLAYABLE}")
  w, h = int(m.group(1)), int(m.group(2))
  frame_bytes = m.end() + w * h * 3
  if len(data) % frame_bytes:
    raise VideoError(f"cannot decode video {path!r}: ffmpeg's frames were cut short. {_PLAYABLE}")
  raw = np.frombuffer(data, np.uint8).reshape(-1, frame_bytes)[:, m.end() :]
  return raw.reshape(-1, h, w, 3).copy(), _ffmpeg_fps(err)


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


def read_folder(path: str) -> np.ndarray:
  """uint8 (T, H, W, 3) frames of a folder of images, in natural order (`img2` before `img10`)."""
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


def read_video(path: str) -> tuple[np.ndarray, float | None]:
  """(uint8 (T, H, W, 3) frames, frame rate or None) of a video file or an animated GIF."""
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
      frames, fps = _read_ffmpeg(path)
  except VideoError:
    raise
  except Exception as e:
    raise VideoError(f"cannot decode video {path!r}: {type(e).__name__}: {e}. {_PLAYABLE}") from e
  if not len(frames):
    raise VideoError(f"video {path!r} decoded to zero frames; is the file empty or truncated?")
  return (np.stack(frames) if isinstance(frames, list) else frames), fps


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
  """Writes H.264 mp4 (yuv420p, plays everywhere) at `fps`; frames uint8 or float [0, 1].

  A failed write (ffmpeg's error, a full disk) raises VideoError and leaves no file at `path`.
  """
  frames = np.ascontiguousarray(_even(as_uint8_frames(frames)))
  t, h, w, _ = frames.shape
  if t == 0:
    raise VideoError(f"cannot write video {path!r}: no frames")
  if not (np.isfinite(fps) and fps > 0):
    raise VideoError(f"cannot write video {path!r}: frame rate {fps} is not a positive number")
  # A fraction keeps rates like 24000/1001 exact.
  rate = str(fractions.Fraction(float(fps)).limit_denominator())
  args = ["-loglevel", "error", "-y"]
  args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", rate, "-i", "-"]
  args += ["-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(MP4_CRF), "-f", "mp4"]
  args += ["file:" + path]
  try:
    returncode, _, err = _run_ffmpeg(args, stdin_data=memoryview(frames).cast("B"))
    if returncode != 0:
      raise VideoError(f"cannot write video {path!r}: ffmpeg: {_ffmpeg_detail(err, returncode)}")
  except BaseException:
    # Half an mp4 plays nowhere; a partial file would only pass for a result.
    if os.path.isfile(path):
      os.remove(path)
    raise


def gif_fps(fps: float) -> float:
  return min(float(fps), MAX_GIF_FPS)


def write_gif(path: str, frames, fps: float) -> float:
  """Writes a looping GIF; returns the frame rate actually used (at most MAX_GIF_FPS, see above).

  Pillow stores identical consecutive frames once with their delays added, so the play time is exact
  but a still stretch reads back as fewer frames.
  """
  from PIL import Image

  frames = as_uint8_frames(frames)
  used = gif_fps(fps)
  # Each frame gets its own 256-colour palette by Pillow's fast octree, without dithering: the
  # default median cut took ~40 ms a frame, a tenth of an evaluation's time on the demo.
  images = [
    Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    for f in frames
  ]
  images[0].save(path, save_all=True, append_images=images[1:], duration=1000.0 / used, loop=0)
  return used


def read_frames(path: str) -> np.ndarray:
  """Reads back a written mp4/GIF as uint8 (T, H, W, 3) (used by tests and the report)."""
  return read_video(path)[0]


def resize_frames(frames: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """uint8 (T, H, W, 3) frames resized to size x size (or (h, w)) by `me_fomm.data.images.resize`."""
  h, w = (size, size) if isinstance(size, int) else size
  if frames.shape[1:3] == (h, w):
    return frames
  return np.stack([images.resize(f, (h, w)) for f in frames])


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
