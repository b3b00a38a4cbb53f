"""custom: the user's own clips, with the same preprocessing as the corpora.

The manual folder holds clips as video files (.mp4 .avi .mov .mkv .webm) or as folders of
numbered frames (.jpg .png .bmp), either directly or one level down in a folder per subject:
  <manual_dir>/alice/smile_01.mp4   <manual_dir>/alice/frown_02/0001.png ...
  <manual_dir>/clip_03.mp4                       (subject = the clip's own name)
An optional `<manual_dir>/clips.csv` annotates clips by their id (`subject/clip` or `clip`)
with any of the columns clip_id, emotion, action_units, onset, apex, offset, fps (onset,
apex, offset are frame indices from 0). Without it, onset is the first frame, offset the
last and the apex their middle (flagged estimated); the label comes from the emotion.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from me_fomm_datasets.common import builder as B
from me_fomm_datasets.common import preprocess as P
from me_fomm_datasets.common import sheets

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")

INSTRUCTIONS = """\
Put your clips (videos, or folders of numbered frames) in a folder, optionally one folder
per subject, optionally with a clips.csv (clip_id, emotion, action_units, onset, apex,
offset, fps), then run:
  me-fomm prepare --dataset=custom --manual_dir=<folder> --data_dir=<data_dir>
"""


def _is_frame_folder(path: str) -> bool:
  return os.path.isdir(path) and any(
    os.path.splitext(n)[1].lower() in P.FRAME_EXTENSIONS for n in os.listdir(path)
  )


def _clip_name(path: str) -> str | None:
  """The clip name of a video file (its stem) or a frame folder (its name); None otherwise."""
  name = os.path.basename(path)
  stem, ext = os.path.splitext(name)
  if ext.lower() in VIDEO_EXTENSIONS:
    return stem
  return name if _is_frame_folder(path) else None


def _read_annotations(manual_dir: str) -> dict:
  path = os.path.join(manual_dir, "clips.csv")
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames or "clip_id" not in [sheets.norm(c) for c in reader.fieldnames]:
      raise ValueError(f"{path}: needs a clip_id column; found {reader.fieldnames}.")
    out = {}
    for line, row in enumerate(reader, start=2):
      row = {sheets.norm(k): (v or "").strip() for k, v in row.items() if k}
      out[row["clip_id"]] = (line, row)
  return out


def clip_specs(
  manual_dir: str, corpus: str = "custom", notes: list | None = None
) -> list[P.ClipSpec]:
  found = []  # (subject, clip name, path)
  for name in sorted(os.listdir(manual_dir)):
    path = os.path.join(manual_dir, name)
    clip = _clip_name(path)
    if clip is not None:  # a clip of its own subject
      found.append((clip, clip, path))
    elif os.path.isdir(path):  # a subject's folder of clips
      for sub in sorted(os.listdir(path)):
        clip = _clip_name(os.path.join(path, sub))
        if clip is not None:
          found.append((name, clip, os.path.join(path, sub)))
  if not found:
    raise FileNotFoundError(
      f"custom: no clips (videos {VIDEO_EXTENSIONS} or folders of "
      f"frames) in {manual_dir}.\n{INSTRUCTIONS}"
    )
  annotations = _read_annotations(manual_dir)
  used = set()
  specs = []
  for subject, clip, path in found:
    clip_id = clip if subject == clip else f"{subject}/{clip}"
    key = clip_id if clip_id in annotations else clip
    line, row = annotations.get(key, (None, {}))
    if line is not None:
      used.add(key)
    spec = P.ClipSpec(
      clip_id=clip_id,
      subject=subject,
      corpus=corpus,
      emotion=row.get("emotion", "").lower(),
      action_units=row.get("actionunits", ""),
      where=path,
      fps=30.0,
    )
    if row.get("fps"):
      try:
        spec.fps = float(row["fps"])
        if not spec.fps > 0:
          raise ValueError
      except ValueError:
        spec.problem = (
          f"clip {clip_id}: clips.csv line {line}: fps {row['fps']!r} is not a positive number."
        )
    spec.extra["fps_given"] = bool(row.get("fps"))
    if line is not None:
      spec.where = f"{path} (clips.csv line {line})"
    for key in ("onset", "apex", "offset"):
      value = row.get(key, "")
      if value and sheets.as_int(value) is None:
        spec.problem = (
          f"clip {clip_id}: clips.csv line {line}: {key} {value!r} is not a frame index."
        )
      setattr(spec, key, sheets.as_int(value) if value else None)
    if os.path.isdir(path):
      spec.list_frames(path)
      spec.frame_numbers = list(range(len(spec.frame_paths)))  # annotations index from 0
    else:
      spec.extra["video"] = path
    specs.append(spec)
  unused = sorted(set(annotations) - used)
  if unused and notes is not None:
    notes.append(f"clips.csv rows that match no clip (check the clip_id): {unused}")
  return specs


def read_video(path: str, clip_id: str) -> tuple[list, float | None]:
  """uint8 RGB frames and fps of a video file (imageio + ffmpeg)."""
  import imageio.v3 as iio

  try:
    frames = list(iio.imiter(path))
    meta = iio.immeta(path)
  except Exception as e:  # imageio raises many types for broken videos
    raise P.ClipError(f"clip {clip_id}: cannot read video {path}: {e}") from None
  frames = [np.ascontiguousarray(np.asarray(f)[..., :3]) for f in frames]
  if not frames:
    raise P.ClipError(f"clip {clip_id}: video {path} has no frames.")
  return frames, meta.get("fps")


class Custom(B.ClipBuilder):
  """The user's own clips (videos or frame folders), preprocessed like the corpora."""

  name = "custom"
  CORPUS = "custom"
  DESCRIPTION = __doc__
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  BUILDER_CONFIGS = B.standard_configs()

  def _clip_specs(self, manual_dir):
    return {"train": clip_specs(manual_dir, self.CORPUS, self.report.notes)}

  def _process(self, spec: P.ClipSpec) -> dict:
    video = spec.extra.get("video")
    if video is None or spec.problem:
      return super()._process(spec)
    frames, fps = read_video(video, spec.clip_id)
    spec.frame_numbers = list(range(len(frames)))
    if fps and not spec.extra["fps_given"]:  # clips.csv's fps wins
      spec.fps = float(fps)
    return P.process_frames(spec, frames, self.detector, self.process_options, self.crop_detector)


Builder = Custom
