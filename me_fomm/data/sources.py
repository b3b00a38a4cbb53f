"""Random-access sources of clips from the TFDS datasets built in `datasets/`.

`load(name, data_dir, split)` imports the builder module (which registers it with TFDS),
picks the config and returns a Grain-compatible random-access source (`len`, `[i]`) of clip
dicts. Text fields come back as `str`, `label` as an int index into `me_fomm.data.vocab.LABELS`
(`me_fomm.data.clip.Clip.from_record` decodes a record into frames and names).

This is the one module of the library that imports the builders (`me_fomm_datasets`); everything
else reaches them through it.

Names: 'casme2', 'samm', 'smic/hs' (also vis, nir), 'megc', 'synthetic_me' (variants small,
demo, full: 'synthetic_me/small'), 'custom', 'augmented' (written by `me-fomm augment`). A full config name also works
('smic/hs_64', 'synthetic_me/demo_128'). `image_size`/`grayscale` pick the config's
resolution and colour when the name gives only the variant.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Sequence

from me_fomm.data import shards
from me_fomm_datasets.common import builder as B

# name -> (module, class, default variant)
BUILDERS = {
  "casme2": ("me_fomm_datasets.casme2.casme2_dataset_builder", "Casme2", ""),
  "samm": ("me_fomm_datasets.samm.samm_dataset_builder", "Samm", ""),
  "smic": ("me_fomm_datasets.smic.smic_dataset_builder", "Smic", "hs"),
  "megc": ("me_fomm_datasets.megc.megc_dataset_builder", "Megc", ""),
  "synthetic_me": (
    "me_fomm_datasets.synthetic_me.synthetic_me_dataset_builder",
    "SyntheticMe",
    "demo",
  ),
  "custom": ("me_fomm_datasets.custom.custom_dataset_builder", "Custom", ""),
  # Generated cross-identity clips (`me-fomm augment`).
  "augmented": ("me_fomm_datasets.augmented.augmented_dataset_builder", "Augmented", ""),
}
_TEXT = (
  "subject",
  "clip_id",
  "corpus",
  "emotion",
  "action_units",
  "identity",
  "ground_truth_identity",
  # augmented: whose motion and which target face a generated clip carries
  "driving_subject",
  "driving_clip_id",
  "driving_corpus",
  "target_subject",
  "target_clip_id",
)


def builder_class(name: str):
  base = name.split("/")[0]
  if base not in BUILDERS:
    raise ValueError(
      f"unknown dataset {name!r}; known: {sorted(BUILDERS)} "
      "(SMIC as smic/hs, smic/vis or smic/nir)."
    )
  module, cls, _ = BUILDERS[base]
  return getattr(importlib.import_module(module), cls)


def resolve_config(
  name: str,
  image_size: int | None = None,
  grayscale: bool | None = None,
  margin: float | None = None,
  frame_format: str | None = None,
  options: dict | None = None,
):
  """The builder config (a name in BUILDER_CONFIGS, or a new ClipConfig) for a dataset name.

  `options` are a builder's own config options (synthetic_me: num_train, num_test, min_frames,
  max_frames, seed, train_identity); the corpora have none.
  """
  base, _, rest = name.partition("/")
  cls = builder_class(base)
  known = {c.name: c for c in cls.BUILDER_CONFIGS}
  variants = {c.variant for c in cls.BUILDER_CONFIGS if c.variant}
  full_name = rest in known and rest not in variants  # e.g. 'hs_64', not the variant 'hs'
  if (
    full_name
    and image_size is None
    and grayscale is None
    and margin is None
    and frame_format is None
    and not options
  ):
    return known[rest]
  default = (
    known[cls.DEFAULT_CONFIG_NAME]
    if getattr(cls, "DEFAULT_CONFIG_NAME", None)
    else cls.BUILDER_CONFIGS[0]
  )
  variant = rest or BUILDERS[base][2]
  if full_name:  # a full config name plus overrides
    default, variant = known[rest], known[rest].variant
  res = int(image_size) if image_size is not None else default.resolution
  gray = bool(grayscale) if grayscale is not None else default.grayscale
  fmt = frame_format or default.frame_format
  if base == "synthetic_me":
    from me_fomm_datasets.synthetic_me import synthetic_me_dataset_builder as S

    kw = dict(options or {}) | ({} if margin is None else {"margin": margin})
    cfg = S.synthetic_config(variant or "demo", res, gray, frame_format=fmt, **kw)
  else:
    if options:
      raise ValueError(f"{base} has no config options; got {sorted(options)}.")
    valid = sorted(variants)
    if valid and variant not in valid:
      raise ValueError(
        f"{base}: unknown config {rest!r}; variants: {valid}, configs: {sorted(known)}."
      )
    if not valid and rest and not full_name:
      raise ValueError(f"{base}: unknown config {rest!r}; configs: {sorted(known)}.")
    cfg = B.make_config(
      variant, res, gray, B.DEFAULT_MARGIN if margin is None else margin, frame_format=fmt
    )
  return known.get(cfg.name, cfg)


def _class_and_config(name, image_size, grayscale, margin, frame_format, options):
  return builder_class(name), resolve_config(
    name, image_size, grayscale, margin, frame_format, options
  )


def builder(
  name: str,
  data_dir: str,
  image_size: int | None = None,
  grayscale: bool | None = None,
  margin: float | None = None,
  frame_format: str | None = None,
  options: dict | None = None,
  **kwargs: Any,
):
  """The TFDS builder of a dataset name (not built yet necessarily); `options` as in
  `resolve_config`, `kwargs` for the builder (strict, progress, workers, detector)."""
  cls, config = _class_and_config(name, image_size, grayscale, margin, frame_format, options)
  if any(c is config for c in cls.BUILDER_CONFIGS):
    # By name: a builder is re-created from its init arguments when a data source is pickled
    # to a Grain worker, and TFDS refuses a config *object* that shares a registered name.
    config = config.name
  return cls(data_dir=os.fspath(data_dir), config=config, **kwargs)


class ClipSource:
  """Grain random-access source of clip dicts (str text fields) over a TFDS data source.

  The one reader of records: a shard that cannot be read (missing, truncated, flipped bytes)
  raises `me_fomm.data.shards.DamagedShardError` naming the file and `rebuild`, the command
  that builds it again. Records come back as `shards.Record`s, which know their shard.
  """

  def __init__(
    self, data_source, name: str = "", split: str = "", rebuild: str = "", folder: str = ""
  ):
    self._source = data_source
    self.name, self.split = name, split
    self.folder = folder
    self.rebuild = rebuild or (
      f"me-fomm prepare --dataset={name or '<dataset>'} --data_dir=<data_dir> --overwrite"
    )

  def __len__(self) -> int:
    return len(self._source)

  def shard_path(self, index: int) -> str:
    """The shard file holding clip `index` ('' when the reader does not say)."""
    # array_record's data source (under TFDS's) maps an index to a reader and that reader's
    # file; private, so any surprise just leaves the file unnamed (the folder is named).
    inner = getattr(self._source, "data_source", self._source)
    try:
      reader, _ = inner._reader_idx_and_position(int(index))
      return os.fspath(inner._read_instructions[reader].filename)
    except Exception:  # noqa: BLE001
      return ""

  def origin(self, index: int) -> shards.Origin:
    return shards.Origin(
      self.shard_path(index), int(index), self.name, self.split, self.folder, self.rebuild
    )

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"clip {index} of {self.name} {self.split}: it has {len(self)} clips")
    origin = self.origin(index)
    try:
      record = shards.Record(self._source[index])
      for key in _TEXT:
        if key in record and isinstance(record[key], bytes):
          record[key] = record[key].decode("utf-8")
    except Exception as e:
      # Riegeli's RuntimeErrors (hash mismatch, bad block header, file too small, open()
      # failed), a record that does not parse, text that is not UTF-8: all mean the file
      # on disk is not what `prepare` wrote.
      raise shards.damaged(origin, e) from e
    record.origin = origin  # for the frame decoders' errors (`shards.decoding`)
    return record

  def __repr__(self) -> str:
    return f"ClipSource({self.name!r}, split={self.split!r}, clips={len(self)})"


class Subset:
  """A source restricted to some indices (e.g. one leave-one-subject-out fold)."""

  def __init__(self, source, indices: Sequence[int]):
    self._source, self.indices = source, [int(i) for i in indices]
    n = len(source)
    bad = [i for i in self.indices if not 0 <= i < n]
    if bad:
      raise IndexError(f"Subset: indices {bad[:5]} outside the source's {n} clips.")

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int) -> dict:
    return self._source[self.indices[int(index)]]


def load(
  name: str,
  data_dir: str,
  split: str = "train",
  image_size: int | None = None,
  grayscale: bool | None = None,
  margin: float | None = None,
  frame_format: str | None = None,
) -> ClipSource:
  """A random-access source of the clips of a built dataset split."""
  b = _checked_builder(name, data_dir, image_size, grayscale, margin, frame_format)
  command = _prepare_command(name, data_dir, image_size, grayscale, margin, frame_format)
  if not b.is_prepared():
    raise FileNotFoundError(
      f"dataset {b.name}/{b.builder_config.name} is not built in {data_dir} (no "
      f"{b.data_dir}). Build it first: {command}"
    )
  splits = list(b.info.splits.keys())
  if split not in splits:
    raise ValueError(
      f"dataset {b.name}/{b.builder_config.name} has splits {splits}, not {split!r}."
    )
  return ClipSource(
    b.as_data_source(split),
    f"{b.name}/{b.builder_config.name}",
    split,
    rebuild=f"{command} --overwrite",
    folder=os.fspath(b.data_dir),
  )


def _checked_builder(name, data_dir, image_size, grayscale, margin, frame_format, **kwargs):
  """`builder(...)`, with a build whose JSON files are damaged named as such."""
  try:
    return builder(name, data_dir, image_size, grayscale, margin, frame_format, **kwargs)
  except Exception as e:
    # TFDS reads the version folder's JSON when it makes the builder: a damaged one fails there.
    folder = version_folder(name, data_dir, image_size, grayscale, margin, frame_format)
    bad = _unparsable_json(folder)
    if not bad:
      raise
    rebuild = (
      _prepare_command(name, data_dir, image_size, grayscale, margin, frame_format) + " --overwrite"
    )
    raise shards.DamagedShardError(
      f"dataset file {bad} is damaged (truncated or corrupt: {shards.reason(e)}); rebuild the "
      f"dataset: {rebuild}",
      shard=bad,
      rebuild=rebuild,
    ) from e


def version_folder(
  name: str,
  data_dir: str,
  image_size: int | None = None,
  grayscale: bool | None = None,
  margin: float | None = None,
  frame_format: str | None = None,
  options: dict | None = None,
) -> str:
  """The folder a build of `name` lives in (data_dir/<dataset>/<config>/<version>), without
  making the builder (which reads what is there, and fails when that is damaged)."""
  cls, config = _class_and_config(name, image_size, grayscale, margin, frame_format, options)
  return os.path.join(os.fspath(data_dir), cls.name, config.name, str(cls.VERSION))


def _unparsable_json(folder: str) -> str:
  """The first JSON file of `folder` that does not parse ('' when all do, or no folder)."""
  import json

  if not os.path.isdir(folder):
    return ""
  for entry in sorted(os.listdir(folder)):
    path = os.path.join(folder, entry)
    if entry.endswith(".json") and os.path.isfile(path):
      try:
        with open(path, encoding="utf-8") as f:
          json.load(f)
      except (ValueError, UnicodeDecodeError):
        return path
  return ""


def _prepare_command(name, data_dir, image_size, grayscale, margin, frame_format) -> str:
  """The `me-fomm prepare` line that builds what `load` was asked to read (for `augmented`, the
  `me-fomm augment` that generates it)."""
  if name.split("/")[0] == "augmented":
    return (
      "me-fomm augment --checkpoint=<checkpoint> --dataset=<driving corpus> "
      f"--data_dir=<its data_dir> --out={data_dir}"
    )
  flags = [f"--dataset={name}", f"--data_dir={data_dir}"]
  if image_size:
    flags.append(f"--image_size={image_size}")
  if grayscale is not None:
    flags.append("--grayscale" if grayscale else "--nograyscale")
  if margin is not None:
    flags.append(f"--margin={margin}")
  if frame_format:
    flags.append(f"--frame_format={frame_format}")
  if name.split("/")[0] != "synthetic_me":
    flags.append("--manual_dir=<the downloaded corpus>")
  return "me-fomm prepare " + " ".join(flags)


def prepare(
  name: str,
  data_dir: str,
  manual_dir: str | None = None,
  image_size: int | None = None,
  grayscale: bool | None = None,
  margin: float | None = None,
  strict: bool = False,
  progress: bool = False,
  overwrite: bool = False,
  frame_format: str | None = None,
  workers: int = 0,
):
  """Builds a dataset (if not built yet, or again with `overwrite`, which first removes its
  version folder, whole or damaged).

  Returns (builder, report, built_now): report is the build's `build_report.json`
  ({'written', 'skipped', 'frames', 'borrowed_frames', 'notes'}, None if absent) and
  built_now says whether this call built it. `workers` > 1 processes clips in that many
  forked processes (same records and report as in one process). TFDS writes into an `incomplete.*` folder and moves it into
  place only when every split is written, so a failed build leaves nothing that loads.
  """
  import shutil

  import tensorflow_datasets as tfds

  def make():
    return _checked_builder(
      name,
      data_dir,
      image_size,
      grayscale,
      margin,
      frame_format,
      strict=strict,
      progress=progress,
      workers=workers,
    )

  def check_manual_dir(cls):
    instructions = cls.MANUAL_DOWNLOAD_INSTRUCTIONS
    if instructions and not manual_dir:
      raise ValueError(
        f"{cls.name} needs the corpus downloaded by hand; pass its folder as "
        f"manual_dir (--manual_dir).\n{instructions}"
      )
    if instructions and not os.path.isdir(manual_dir):
      raise FileNotFoundError(f"manual_dir {manual_dir} is not a folder.\n{instructions}")

  if overwrite:
    check_manual_dir(builder_class(name))  # before the old build is gone
    # Only this dataset's version folder goes, and before the builder is made: TFDS reads the
    # folder's JSON then, so a damaged build could not even be rebuilt otherwise.
    folder = version_folder(name, data_dir, image_size, grayscale, margin, frame_format)
    if os.path.isdir(folder):
      shutil.rmtree(folder)
  b = make()
  built_now = not b.is_prepared()
  if built_now:
    check_manual_dir(b)
    dl = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None
    b.download_and_prepare(download_config=dl)
  return b, B.read_report(b), built_now


def report_summary(report: dict) -> str:
  """The text summary of a build report (as `prepare` returns it): clips written and skipped
  with their reasons, frames with borrowed landmarks, notes."""
  return B.BuildReport(
    written=report["written"],
    skipped=[tuple(s) for s in report["skipped"]],
    frames=report["frames"],
    borrowed_frames=report["borrowed_frames"],
    notes=report.get("notes", []),
  ).summary()


def metadata(source) -> list[dict]:
  """Per-clip metadata (subject, clip_id, corpus, label, ...) without keeping frames."""
  keys = _TEXT + ("label", "onset", "apex", "offset")
  out = []
  for i in range(len(source)):
    rec = source[i]
    out.append({k: rec[k] for k in keys if k in rec})
  return out
