"""Base TFDS builder for micro-expression corpora: configs, skip/strict, build report.

A concrete builder lists its clips (`_clip_specs(manual_dir) -> {split: [ClipSpec]}`) and
this class turns each into an example with the shared preprocessing. Records are written as
`array_record` so that neither building nor reading needs TensorFlow, and TFDS shuffles the
examples at build time (by a hash of the clip id).

Failure safety: TFDS writes a build into an `incomplete.*` folder and renames it into place
only when every split is written; on an exception it deletes that folder, so a failed build
leaves no dataset that looks complete (pinned by `datasets/common/builder_test.py`).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import json
import multiprocessing
import os
import sys
from typing import Any

import cv2
from etils import epath
import tensorflow_datasets as tfds

from me_fomm.data import images
from me_fomm_datasets.common import features as F
from me_fomm_datasets.common import preprocess as P

DEFAULT_MARGIN = 0.2
RESOLUTIONS = (256, 128, 64)
REPORT_FILE = "build_report.json"


@dataclasses.dataclass(eq=False)
class ClipConfig(tfds.core.BuilderConfig):
  """Build options: `variant` (e.g. SMIC's hs/vis/nir), output resolution, crop margin
  (fraction of the face box side added on each side), grayscale repeated on 3 channels."""

  variant: str = ""
  resolution: int = 256
  margin: float = DEFAULT_MARGIN
  grayscale: bool = False
  frame_format: str = "png"
  options: dict = dataclasses.field(default_factory=dict)  # builder-specific (synthetic_me)


def config_name(
  variant: str = "",
  resolution: int = 256,
  grayscale: bool = False,
  margin: float = DEFAULT_MARGIN,
  default_margin: float = DEFAULT_MARGIN,
  frame_format: str = "png",
) -> str:
  """'hs' (256 px), 'hs_64', '128', '256_gray', '64_m35' (margin 0.35)...; stable and readable."""
  parts = [variant] if variant else []
  if resolution != 256 or not variant:
    parts.append(str(int(resolution)))
  if grayscale:
    parts.append("gray")
  if abs(margin - default_margin) > 1e-9:
    parts.append(f"m{int(round(margin * 100))}")
  if frame_format == "jpeg":
    parts.append("jpg")
  return "_".join(parts)


def make_config(
  variant: str = "",
  resolution: int = 256,
  grayscale: bool = False,
  margin: float = DEFAULT_MARGIN,
  description: str = "",
  default_margin: float = DEFAULT_MARGIN,
  frame_format: str = "png",
  **options,
) -> ClipConfig:
  if int(resolution) != resolution or not 16 <= resolution <= 1024:
    raise ValueError(f"resolution must be an integer in [16, 1024] pixels, got {resolution!r}.")
  if not 0.0 <= margin <= 2.0:
    raise ValueError(f"margin must be in [0, 2] (fraction of the face box side), got {margin!r}.")
  if frame_format not in images.FRAME_FORMATS:
    raise ValueError(f"frame_format must be one of {images.FRAME_FORMATS}, got {frame_format!r}.")
  return ClipConfig(
    name=config_name(variant, resolution, grayscale, margin, default_margin, frame_format),
    description=description
    or (
      f"{variant + ' ' if variant else ''}{resolution}x{resolution}"
      f"{' grayscale' if grayscale else ''}, margin {margin}"
    ),
    variant=variant,
    resolution=int(resolution),
    margin=float(margin),
    grayscale=bool(grayscale),
    frame_format=frame_format,
    options=dict(options),
  )


def standard_configs(variants=("",), grayscale=(False, True)) -> list[ClipConfig]:
  return [make_config(v, r, g) for v in variants for r in RESOLUTIONS for g in grayscale]


@dataclasses.dataclass
class BuildReport:
  """What a build did: written clips per split, skipped clips and why, borrowed landmarks."""

  written: dict = dataclasses.field(default_factory=lambda: collections.Counter())
  skipped: list = dataclasses.field(default_factory=list)  # (split, clip_id, reason)
  frames: int = 0
  borrowed_frames: int = 0
  notes: list = dataclasses.field(default_factory=list)  # e.g. clips a protocol leaves out

  def as_dict(self) -> dict:
    return {
      "written": dict(self.written),
      "skipped": [list(s) for s in self.skipped],
      "frames": self.frames,
      "borrowed_frames": self.borrowed_frames,
      "notes": list(self.notes),
    }

  def summary(self) -> str:
    lines = [
      f"clips written: {sum(self.written.values())} "
      f"({', '.join(f'{k}: {v}' for k, v in sorted(self.written.items())) or 'none'})",
      f"clips skipped: {len(self.skipped)}",
    ]
    lines += [f"  [{split}] {clip}: {why}" for split, clip, why in self.skipped]
    lines.append(f"frames: {self.frames}, with a borrowed landmark: {self.borrowed_frames}")
    lines += [f"note: {n}" for n in self.notes]
    return "\n".join(lines)


class ClipBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
  """Shared machinery; subclasses set `name`, `CORPUS`, configs and `_clip_specs`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  CORPUS = ""
  GROUND_TRUTH = False
  HOMEPAGE = ""
  CITATION = ""
  DESCRIPTION = ""

  def __init__(
    self,
    *,
    strict: bool = False,
    progress: bool = False,
    detector=None,
    workers: int = 0,
    file_format: str = "array_record",
    **kwargs: Any,
  ):
    # array_record is the only format readable without TensorFlow; never let it default.
    if file_format != "array_record":
      raise ValueError(
        f"{type(self).__name__}: only file_format='array_record' is supported "
        f"(it needs no TensorFlow), got {file_format!r}."
      )
    super().__init__(file_format=file_format, **kwargs)
    if int(workers) != workers or workers < 0:
      raise ValueError(f"workers must be an integer >= 0, got {workers!r}.")
    self.strict = strict
    self.progress = progress
    self.workers = int(workers)
    self._detector = detector
    self.report = BuildReport()

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):  # pylint: disable=invalid-name
    # TFDS finds a builder's folder (for checksums.tsv) through importlib resources, which for
    # an editable install needs the extra `importlib_resources` package; the module's own
    # file is the same answer without it.
    return epath.Path(sys.modules[cls.__module__].__file__)

  # -- to implement
  @abc.abstractmethod
  def _clip_specs(self, manual_dir: str | None) -> dict[str, list[P.ClipSpec]]:
    """{split: [ClipSpec]} from the manual download (raise FileNotFoundError if it is wrong)."""

  # -- shared
  @property
  def detector(self):
    """Whole-frame detector (upsample 1: faces down to about 40 px)."""
    if self._detector is None:
      from me_fomm.prior.landmarks import LandmarkDetector  # dlib models load lazily

      self._detector = LandmarkDetector(upsample=1)
    return self._detector

  @property
  def crop_detector(self):
    """Detector for crops resized to >= 256 px, where the face is >= 150 px: no upsampling
    needed, which makes per-frame detection about 4x faster."""
    if getattr(self, "_crop_detector", None) is None:
      from me_fomm.prior.landmarks import LandmarkDetector

      if type(self.detector) is LandmarkDetector:
        self._crop_detector = LandmarkDetector(upsample=0)
      else:  # an injected detector (tests) is used as given
        self._crop_detector = self.detector
    return self._crop_detector

  @property
  def process_options(self) -> P.ProcessOptions:
    c = self.builder_config
    return P.ProcessOptions(
      resolution=c.resolution, margin=c.margin, grayscale=c.grayscale, frame_format=c.frame_format
    )

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      features=F.clip_features(ground_truth=self.GROUND_TRUTH),
      homepage=self.HOMEPAGE or None,
      citation=self.CITATION or None,
    )

  def _split_generators(self, dl_manager):
    manual_dir = None
    if self.MANUAL_DOWNLOAD_INSTRUCTIONS:
      manual_dir = os.fspath(dl_manager._manual_dir) if dl_manager._manual_dir else None  # pylint: disable=protected-access
      if not manual_dir or not os.path.isdir(manual_dir):
        raise FileNotFoundError(
          f"{self.name}: manual_dir {manual_dir!r} is not a folder. Download the corpus by "
          f"hand and pass its folder as --manual_dir.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    specs = self._clip_specs(manual_dir)
    self._check_duplicates(specs)
    return {split: self._generate_examples(split, clips) for split, clips in specs.items()}

  def _check_duplicates(self, specs: dict) -> None:
    """Marks a repeated clip id within a split as a problem (TFDS keys must be unique)."""
    for clips in specs.values():
      first = {}
      for spec in clips:
        if spec.clip_id in first and not spec.problem:
          spec.problem = (
            f"clip {spec.clip_id}: duplicated row ({spec.where}); the clip was "
            f"already listed at {first[spec.clip_id]}. Delete one of the rows."
          )
        first.setdefault(spec.clip_id, spec.where)

  def _process(self, spec: P.ClipSpec) -> dict:
    return P.process_clip(
      spec, self.detector, self.process_options, crop_detector=self.crop_detector
    )

  def _process_or_error(self, spec: P.ClipSpec):
    """The example, or a ClipError saying why the clip cannot be built."""
    try:
      return self._process(spec)
    except P.ClipError as e:
      return e
    except (ValueError, OSError, cv2.error) as e:
      # Decoders and dlib on damaged input: reported with their type and the clip's location.
      return P.ClipError(f"clip {spec.clip_id} ({spec.where}): {type(e).__name__}: {e}")

  def _before_workers(self) -> None:
    """Work to do once in the parent before forking workers (e.g. load shared state)."""

  def _processed(self, specs: list):
    """(spec, example or ClipError) in order; in `workers` forked processes if > 1.

    Clips are independent, so a pool of processes (fork: each inherits the builder and
    loads its own dlib models) multiplies the build rate by the cores given; `imap` keeps the
    order, so the records and the report do not depend on the worker count.
    """
    if self.workers <= 1 or len(specs) < 2:
      for spec in specs:
        yield spec, self._process_or_error(spec)
      return
    global _FORKED_BUILDER
    self._before_workers()
    _FORKED_BUILDER = self
    try:
      with multiprocessing.get_context("fork").Pool(self.workers) as pool:
        for spec, result in zip(specs, pool.imap(_process_in_worker, specs, chunksize=1)):
          yield spec, result
    finally:
      _FORKED_BUILDER = None

  def _generate_examples(self, split: str, specs: list):
    items = self._processed(specs)
    if self.progress:
      import tqdm

      items = tqdm.tqdm(
        items, total=len(specs), unit="clip", desc=f"{self.name}/{self.builder_config.name} {split}"
      )
    for spec, example in items:
      if isinstance(example, P.ClipError):
        if self.strict:
          raise P.ClipError(
            f"{example} (strict build: stopping; without --strict the clip is skipped)"
          )
        self.report.skipped.append((split, spec.clip_id, str(example)))
        continue
      self.report.written[split] += 1
      self.report.frames += len(example["frames"])
      self.report.borrowed_frames += int(example["landmark_borrowed"].sum())
      key = f"{spec.corpus}/{spec.clip_id}" if spec.corpus else spec.clip_id
      yield key, example
    if not self.report.written[split] and specs:
      reasons = "\n".join(f"  {c}: {w}" for s, c, w in self.report.skipped if s == split)
      raise P.ClipError(
        f"{self.name}: no clip of split {split!r} could be built; nothing was "
        f"written. Reasons:\n{reasons}"
      )
    if not specs:
      raise FileNotFoundError(f"{self.name}: split {split!r} has no clips in the manual download.")

  def download_and_prepare(self, *args, **kwargs):
    """TFDS's build, then `build_report.json` next to the records (skips, borrowed frames)."""
    self.report = BuildReport()
    was_prepared = self.is_prepared()
    with uncompressed_array_records(), _tfds_bars(not self.progress):
      super().download_and_prepare(*args, **kwargs)
    if not was_prepared:
      path = os.path.join(os.fspath(self.data_dir), REPORT_FILE)
      with open(path, "w") as f:
        json.dump(self.report.as_dict(), f, indent=1)


@contextlib.contextmanager
def _tfds_bars(enable: bool):
  """TFDS's own progress bars (generating, shuffling) on or off while inside: with ours (one bar per
  split, counting clips) they would be three bars for one job."""
  from tensorflow_datasets.core.utils import tqdm_utils

  before = getattr(tqdm_utils, "_active", True)
  tqdm_utils.display_progress_bar(enable and before)
  try:
    yield
  finally:
    tqdm_utils.display_progress_bar(before)


@contextlib.contextmanager
def uncompressed_array_records():
  """Writes array_record files without their default block compression while inside.

  Frames are PNG already, so ArrayRecord's default compression gains no space but makes
  every read decompress the whole clip (~5x slower random access, measured on 7 MB clips);
  TFDS always writes with options 'group_size:1', so its writer is swapped for one that
  adds 'uncompressed' (readers take the options from the file and need no change).
  """
  from array_record.python import array_record_module
  from tensorflow_datasets.core import file_adapters

  adapter = file_adapters.ArrayRecordFileAdapter
  original = adapter.__dict__["write_examples"]

  def write_examples(cls, path, iterator):
    writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1,uncompressed")
    for _, serialized in iterator:
      writer.write(serialized)
    writer.close()

  adapter.write_examples = classmethod(write_examples)
  try:
    yield
  finally:
    adapter.write_examples = original


_FORKED_BUILDER = None  # the builder whose clips forked workers process


def _process_in_worker(spec: P.ClipSpec):
  return _FORKED_BUILDER._process_or_error(spec)  # pylint: disable=protected-access


def read_report(builder: tfds.core.DatasetBuilder) -> dict | None:
  path = os.path.join(os.fspath(builder.data_dir), REPORT_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
