"""Decoded frames of a dataset split in one memory-mapped file, for the training pairs.

A clip record holds every frame of its clip, so reading a record to train on two of its frames
costs the whole clip: at 256x256 about 14 ms to read a ~8 MB record and 3 ms to decode each
PNG (2-core EPYC, DESIGN.md's Data section). The store is built once from the records
(every frame decoded, lossless) and holds
- `frames.u8`: every frame of the split, uint8 (H, W, 3), back to back, read through `np.memmap`
  (the OS page cache shares it between Grain worker processes and between runs);
- `index.npz`: per clip its first frame, frame count, onset and label, and every frame's 68
  landmarks;
- `meta.json`: the shape and a fingerprint of the record shards it was built from (their names,
  sizes and modification times); a store whose fingerprint no longer matches the shards (the
  dataset was rebuilt) is built again.

A clip from the store is a dict with the fields training reads (`frames` as an (N, H, W, 3) uint8
view, `landmarks`, `onset`, `label`, `clip_id`), so a pair costs two frame copies instead of a
record read and two decodes. It is built in a temporary folder and renamed into place, so a
build that dies leaves no half store behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import numpy as np

from me_fomm.data import images, shards, sources

log = logging.getLogger("me_fomm.data")

VERSION = 1
AUTO = "auto"


def _base(source):
  """(ClipSource, indices or None) under a `sources.Subset`, or the source itself."""
  if isinstance(source, sources.Subset):
    return source._source, source.indices
  return source, None


def fingerprint(source) -> list:
  """[name, size, mtime_ns] of the record shards of `source`'s split, sorted by name."""
  folder, split = source.folder, source.split
  marker = f"-{split}."
  names = sorted(n for n in os.listdir(folder) if marker in n and ".array_record" in n)
  if not names:
    raise FileNotFoundError(f"no record shards of split {split!r} in {folder}")
  out = []
  for n in names:
    st = os.stat(os.path.join(folder, n))
    out.append([n, int(st.st_size), int(st.st_mtime_ns)])
  return out


def store_folder(source, where: str) -> str:
  """Where the store of `source` (a `sources.ClipSource`) lives: `auto` = a `frame_store/<split>`
  folder inside the dataset's version folder (removed with it by `prepare --overwrite`); any other
  value is a local folder holding stores as `<dataset name>/<split>`."""
  if not getattr(source, "folder", "") or not getattr(source, "split", ""):
    raise ValueError(
      "frame_store needs a built dataset split (me_fomm.data.sources.load); this source is "
      f"{type(source).__name__}: set config.data.frame_store='' to read it as it is."
    )
  if "://" in source.folder:
    raise ValueError(
      f"frame_store needs the dataset on a local disk (it is in {source.folder}); set "
      "config.data.frame_store='' to read the clip records."
    )
  if "://" in where:
    raise ValueError(
      f"frame_store {where!r}: the store is memory-mapped and needs a local folder; set "
      "config.data.frame_store to a local folder, 'auto' or ''."
    )
  if where == AUTO:
    return os.path.join(source.folder, "frame_store", source.split)
  return os.path.join(os.path.expanduser(where), source.name.replace("/", "_"), source.split)


def _meta(folder: str) -> dict | None:
  try:
    with open(os.path.join(folder, "meta.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _frames_bytes(meta: dict) -> int:
  return int(meta["frames"]) * int(np.prod(meta["shape"]))


def is_current(folder: str, expected: list) -> bool:
  """Whether `folder` holds a whole store built from the shards `expected` (`fingerprint`)."""
  meta = _meta(folder)
  if not meta or meta.get("version") != VERSION or meta.get("fingerprint") != expected:
    return False
  try:
    return os.path.getsize(os.path.join(folder, "frames.u8")) == _frames_bytes(meta) and (
      os.path.exists(os.path.join(folder, "index.npz"))
    )
  except OSError:
    return False


def build(source, folder: str, progress: bool = False, expected: list | None = None) -> None:
  """Decodes every frame of `source` (a ClipSource) into a store at `folder` (replaced);
  `expected`: the shards' `fingerprint`, when the caller has it."""
  expected = fingerprint(source) if expected is None else expected
  parent = os.path.dirname(os.path.abspath(folder))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".frame_store_", dir=parent)
  try:
    starts, counts, onsets, labels, ids, landmarks = [], [], [], [], [], []
    shape, total = None, 0
    clips = range(len(source))
    if progress:
      from tqdm import tqdm

      clips = tqdm(clips, desc=f"frame store {source.name} {source.split}", unit="clip")
    with open(os.path.join(tmp, "frames.u8"), "wb") as out:
      for i in clips:
        clip = source[i]
        n = len(clip["frames"])
        lms = np.asarray(clip["landmarks"], np.float32)
        if n < 1 or len(lms) != n:
          raise ValueError(
            f"clip {clip.get('clip_id', i)} of {source.name} {source.split}: {n} frames but "
            f"{len(lms)} landmark sets; rebuild the dataset: {source.rebuild}"
          )
        for k, data in enumerate(clip["frames"]):
          with shards.decoding(clip, f"frame {k}"):
            frame = images.decode_frame(data)
          if shape is None:
            shape = frame.shape
          elif frame.shape != shape:
            raise ValueError(
              f"clip {clip.get('clip_id', i)} of {source.name} {source.split}: frame {k} is "
              f"{frame.shape}, the split's first frame {shape}; rebuild the dataset: "
              f"{source.rebuild}"
            )
          out.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        starts.append(total)
        counts.append(n)
        onsets.append(int(clip["onset"]))
        labels.append(int(clip["label"]))
        ids.append(str(clip.get("clip_id", i)))
        landmarks.append(lms)
        total += n
    np.savez(
      os.path.join(tmp, "index.npz"),
      start=np.asarray(starts, np.int64),
      count=np.asarray(counts, np.int64),
      onset=np.asarray(onsets, np.int32),
      label=np.asarray(labels, np.int32),
      clip_id=np.asarray(ids),
      landmarks=np.concatenate(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32),
    )
    meta = {
      "version": VERSION,
      "dataset": source.name,
      "split": source.split,
      "frames": total,
      "shape": list(shape or (0, 0, 3)),
      "fingerprint": expected,
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
      json.dump(meta, f)
    if os.path.exists(folder):
      if is_current(folder, expected):  # another process (host, test worker) finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return
      shutil.rmtree(folder, ignore_errors=True)
    try:
      os.replace(tmp, folder)
    except OSError:
      if not is_current(folder, expected):
        raise
      shutil.rmtree(tmp, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


class FrameStore:
  """Random access to the clips of a store (see the module doc), as training reads them."""

  def __init__(self, folder: str):
    meta = _meta(folder)
    if meta is None:
      raise FileNotFoundError(f"no frame store in {folder} (meta.json missing or unreadable)")
    self.folder, self.name, self.split = folder, meta["dataset"], meta["split"]
    with np.load(os.path.join(folder, "index.npz")) as z:
      self._start, self._count = z["start"], z["count"]
      self._onset, self._label = z["onset"], z["label"]
      self._ids, self._landmarks = z["clip_id"], z["landmarks"]
    shape = (int(meta["frames"]), *meta["shape"])
    path = os.path.join(folder, "frames.u8")
    size = os.path.getsize(path)
    if size != _frames_bytes(meta):
      raise ValueError(
        f"frame store {folder}: frames.u8 has {size} bytes, {_frames_bytes(meta)} expected for "
        f"{shape[0]} frames of {tuple(shape[1:])}; delete the folder to build it again."
      )
    self._frames = np.memmap(path, np.uint8, "r", shape=shape) if shape[0] else None

  def __len__(self) -> int:
    return len(self._start)

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"clip {index} of {self.name} {self.split}: it has {len(self)} clips")
    a = int(self._start[index])
    b = a + int(self._count[index])
    return {
      "frames": self._frames[a:b],
      "landmarks": self._landmarks[a:b],
      "onset": int(self._onset[index]),
      "label": int(self._label[index]),
      "clip_id": str(self._ids[index]),
    }

  def __getstate__(self):  # Grain workers map the file again rather than pickle the frames
    return {"folder": self.folder}

  def __setstate__(self, state):
    self.__init__(state["folder"])

  def __repr__(self) -> str:
    return f"FrameStore({self.name!r}, split={self.split!r}, clips={len(self)}, {self.folder})"


def open_store(source, where: str = AUTO, progress: bool = False):
  """`source` read from its frame store, built when missing, incomplete or older than the record
  shards; a `sources.Subset` keeps its indices over the store of the split under it. `where` as in
  `store_folder`; with `auto`, a source that is not a built split (a list of clip dicts) is
  returned as it is."""
  base, indices = _base(source)
  if where == AUTO and not (getattr(base, "folder", "") and getattr(base, "split", "")):
    return source
  folder = store_folder(base, where)
  expected = fingerprint(base)
  if not is_current(folder, expected):
    log.info("building the frame store of %s %s in %s", base.name, base.split, folder)
    try:
      build(base, folder, progress=progress, expected=expected)
    except OSError as e:  # read-only dataset folder, full disk
      raise ValueError(
        f"could not write the frame store of {base.name} {base.split} in {folder} "
        f"({e.strerror or e}); set config.data.frame_store to a writable local folder with room "
        "for the split's decoded frames, or to '' to read the clip records"
      ) from e
  store = FrameStore(folder)
  if len(store) != len(base):
    raise ValueError(
      f"frame store {folder} has {len(store)} clips, the split {len(base)}; delete the folder "
      "to build it again."
    )
  return store if indices is None else sources.Subset(store, indices)
