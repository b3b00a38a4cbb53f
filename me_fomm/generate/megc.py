"""The MEGC facial micro-expression generation protocol (MEGC2021, MEGC2022).

The challenge gives 9 source clips (three from each of CASME II, SAMM and SMIC-HS, one per class; the names
are in `me_fomm.data.megc_sources`, the frames in the prepared `megc` dataset) and target faces: 2 in MEGC2021 (a male and a
female face), 4 in MEGC2022. Every target is driven by every source clip: 18 or 36 generated clips, named

    <target>_<class>_<corpus>_<clip>.mp4 / .gif       e.g.  female_positive_casme2_EP01_01f.mp4

where <target> is the target photo's file stem and <clip> the corpus file name of the source clip.

With AU templates (`me-fomm megc --au_templates`) every class is generated from its FACS codes instead of a
source clip: the prototypes of `me_fomm.prior.au_patterns.CLASS_AUS` (positive 6+12; negative 4+7+14 and
4+7+15+17; surprise 1+2+5+26, the combinations synthetic_me renders), each moving the target's own landmarks
(`me_fomm.generate.driving.AuMotion`), named <target>_<class>_<emotion>_au<codes>, e.g.
female_positive_happiness_au6+12.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Sequence

from me_fomm.data.clip import Clip
from me_fomm.generate import pipeline
from me_fomm.generate import target as target_lib
from me_fomm.generate import video as video_lib
from me_fomm.generate.driving import AuMotion

log = logging.getLogger(__name__)

PROTOCOLS = {"megc2021": 2, "megc2022": 4}  # protocol -> number of target faces
CLASSES = ("negative", "positive", "surprise")
NUM_SOURCES = 9


def list_targets(folder: str, protocol: str) -> list[str]:
  """The target photos of a protocol: exactly 2 (megc2021) or 4 (megc2022) images in `folder`."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"--protocol={protocol!r}: choose one of {sorted(PROTOCOLS)}")
  if not folder or not os.path.isdir(folder):
    raise ValueError(
      f"--targets={folder!r} is not a folder; give the folder holding the {PROTOCOLS[protocol]} "
      f"target face photos of {protocol}"
    )
  names = sorted(
    (
      n
      for n in os.listdir(folder)
      if n.lower().endswith(video_lib.IMAGE_EXTENSIONS) and not n.startswith(".")
    ),
    key=video_lib.natural_key,
  )
  if len(names) != PROTOCOLS[protocol]:
    raise ValueError(
      f"{protocol} uses {PROTOCOLS[protocol]} target faces; --targets={folder} holds "
      f"{len(names)} images ({', '.join(names) or 'none'})"
    )
  return [os.path.join(folder, n) for n in names]


def _safe(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.+\-]+", "_", name)


def output_stem(target_path: str, clip: Clip) -> str:
  """<target>_<class>_<corpus>_<clip>, e.g. female_positive_casme2_EP01_01f."""
  from me_fomm.data.megc_sources import clip_name

  stem = os.path.splitext(os.path.basename(target_path))[0]
  name = clip_name(clip.clip_id) if clip.clip_id else clip.name
  parts = [stem, clip.label or "unknown"] + ([clip.corpus] if clip.corpus else []) + [name]
  return _safe("_".join(parts))


def select_sources(source) -> list[Clip]:
  """The 9 MEGC generation source clips (`me_fomm.data.megc_sources`) of a clip source, decoded.

  `source` is random access over clip records (the prepared `megc` dataset, or any source with the three
  corpora's clips). Raises ValueError naming the clips that are missing.
  """
  from me_fomm.data import megc_sources

  clips = []
  for corpus in megc_sources.GENERATION_SOURCES:
    try:
      found = megc_sources.find_generation_sources(source, corpus)
    except KeyError as e:
      raise ValueError(
        f"{e.args[0]} Prepare the `megc` dataset (me-fomm prepare --dataset=megc) from "
        "CASME II, SAMM and SMIC-HS."
      ) from None
    clips += [Clip.from_record(source[i]) for i in found.values()]
  if len(clips) != NUM_SOURCES:
    raise ValueError(
      f"the MEGC protocol drives with {NUM_SOURCES} source clips, found {len(clips)}"
    )
  counts = {k: sum(c.label == k for c in clips) for k in CLASSES}
  if any(v != 3 for v in counts.values()):
    log.warning(
      "MEGC sources: expected 3 clips per class %s, the dataset labels give %s", CLASSES, counts
    )
  return clips


@dataclasses.dataclass(frozen=True)
class AuTemplate:
  """One class's micro-expression as FACS codes: drives each target with its own landmarks."""

  label: str
  emotion: str
  motion: AuMotion

  def clip(self, target, regions=None) -> Clip:
    clip = self.motion.clip(target, regions=regions)
    return dataclasses.replace(clip, label=self.label, name=f"{self.emotion}_{clip.name}")


def au_templates(au_model=None, intensity=1.0, duration_ms=None, fps=None) -> list[AuTemplate]:
  """The AU template of every (class, prototype) of `CLASS_AUS`, in CLASSES order."""
  from me_fomm.prior.au_patterns import CLASS_AUS

  return [
    AuTemplate(label, emotion, AuMotion.parse(aus, au_model, intensity, duration_ms, fps))
    for label in CLASSES
    for aus, emotion in CLASS_AUS[label]
  ]


@dataclasses.dataclass
class MegcResult:
  out: str
  files: dict  # stem -> {'generated_mp4': ..., 'generated_gif': ...}


def run_protocol(
  model: pipeline.LoadedModel,
  clips: Sequence[Clip],
  target_paths: Sequence[str],
  out: str,
  overwrite: bool = False,
  batch_size: int = 32,
  no_crop: bool = False,
  side_by_side: bool = False,
  draw_keypoints: bool = False,
  relative: bool = True,
  adapt_scale: bool = False,
  magnify: float = 1.0,
  detector=None,
  progress: bool = True,
  regions=None,
) -> MegcResult:
  """Drives every target with every source clip (or `AuTemplate`); writes all outputs or nothing."""
  from me_fomm.generate.animate import check_landmark_driving

  out = pipeline.check_output(out, overwrite)
  cfg = model.config
  if any(isinstance(c, AuTemplate) for c in clips):
    check_landmark_driving(cfg)
  need = pipeline.needs_landmarks(cfg)
  if detector is None and (need or not no_crop):
    from me_fomm.prior.landmarks import LandmarkDetector

    detector = LandmarkDetector()
  # Every input is read and checked before anything is generated.
  targets = [
    (
      p,
      target_lib.prepare_target(
        video_lib.read_image(p),
        int(cfg.image_size),
        crop=not no_crop,
        detector=detector,
        need_landmarks=need,
        where=f"target {p}",
      ),
    )
    for p in target_paths
  ]
  drivers = [
    (c, None, None)
    if isinstance(c, AuTemplate)
    else (c, *pipeline.prepare_driving(c, cfg, crop=not no_crop, detector=detector))
    for c in clips
  ]
  animator = pipeline.make_animator(
    model,
    relative=relative,
    adapt_scale=adapt_scale,
    magnify=magnify,
    batch_size=batch_size,
    regions=regions,
  )
  files = {}
  total = len(targets) * len(drivers)
  with pipeline.staged_output(out, overwrite) as tmp:
    n = 0
    for path, tgt in targets:
      for clip, drv, lms in drivers:
        if isinstance(clip, AuTemplate):  # made for this target: its own landmarks move
          clip = clip.clip(tgt, regions=regions)
          drv, lms = clip.frames, clip.landmarks
        n += 1
        stem = output_stem(path, clip)
        log.info("[%d/%d] %s", n, total, stem)
        anim = pipeline.generate(
          animator, tgt, clip, drv, lms, progress=stem if progress else False
        )
        written = pipeline.write_generation(
          tmp,
          stem,
          anim,
          drv,
          tgt.image,
          clip.fps,
          side_by_side=side_by_side,
          draw_keypoints=draw_keypoints,
        )
        files[stem] = {k: os.path.join(out, os.path.basename(v)) for k, v in written.items()}
  return MegcResult(out=out, files=files)


def load_source(data_dir: str, dataset: str = "megc"):
  """The prepared `megc` dataset's clips (its test split, else train) as a random-access source."""
  from me_fomm.data import sources

  errors = []
  for split in ("test", "train"):
    try:
      return sources.load(dataset, data_dir, split)
    except (ValueError, FileNotFoundError) as e:
      errors.append(str(e))
  raise ValueError(
    f"cannot read the {dataset!r} source clips from --data_dir={data_dir}: " + " | ".join(errors)
  )


def expected_names(target_paths: Sequence[str], clips: Sequence[Clip]) -> list[str]:
  """The output stems the protocol writes, target-major (what a submission checker expects)."""
  return [output_stem(p, _named(c)) for p in target_paths for c in clips]


def _named(c):
  if not isinstance(c, AuTemplate):
    return c
  return Clip(frames=None, fps=c.motion.fps, name=f"{c.emotion}_{c.motion.name}", label=c.label)


__all__ = [
  "PROTOCOLS",
  "list_targets",
  "select_sources",
  "au_templates",
  "AuTemplate",
  "run_protocol",
  "load_source",
  "expected_names",
  "output_stem",
  "MegcResult",
]
