"""Turn a corpus split and a checkpoint into scored protocols and a report (`me-fomm evaluate`, the demo).

Cases come from clips (`me_fomm.data.clip.Clip`, decoded from a `me_fomm.data.sources.load` source), resized
to the model's resolution with their landmarks and ground truth (`me_fomm.data.images.resize_with_points`):
* reconstruction: every selected clip drives its own first frame;
* cross-identity: each clip drives a target face from another identity:
  - synthetic_me: the held-out identity (its neutral frame, `ground_truth_frames[onset]`), with the stored
    ground truth of the same motion on that identity;
  - given target photos (`--targets`): each photo x each clip;
  - otherwise the onset frame of a clip of another subject.
* au_driven: the cross-identity cases again, each generated from its clip's FACS codes and timing alone
  (`make_generate_fn(..., au_model=...)`); needs a checkpoint whose keypoints follow landmarks (tip24).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np

from me_fomm.data import images
from me_fomm.data.clip import Clip
from me_fomm.evaluate import metrics as M
from me_fomm.evaluate import protocols as P
from me_fomm.evaluate import report as report_lib
from me_fomm.generate import pipeline
from me_fomm.generate.driving import AuMotion
from me_fomm.generate.target import Target

log = logging.getLogger(__name__)

PROTOCOLS = ("reconstruction", "cross_identity", "au_driven", "recognition")


def check_protocols(protocols) -> None:
  unknown = set(protocols) - set(PROTOCOLS)
  if unknown:
    raise ValueError(f"unknown protocols {sorted(unknown)}; choose from {', '.join(PROTOCOLS)}")


def select_clips(source, per_class: int | None = None, max_clips: int | None = None) -> list[Clip]:
  """Decodes clips of a source: at most `per_class` of each class (in source order), `max_clips` in all."""
  clips, counts = [], {}
  for i in range(len(source)):
    if max_clips is not None and len(clips) >= max_clips:
      break
    clip = Clip.from_record(source[i])
    if per_class is not None:
      if counts.get(clip.label, 0) >= per_class:
        continue
      counts[clip.label] = counts.get(clip.label, 0) + 1
    clips.append(clip)
  if not clips:
    raise ValueError(f"no clips selected from {source!r} (empty split?)")
  return clips


def read_targets(folder: str, model_config) -> list[tuple[str, Target]]:
  """Every photo in `folder` as a prepared cross-identity target (name = file stem), in name order."""
  import os

  from me_fomm.generate import target as target_lib
  from me_fomm.generate import video

  if not os.path.isdir(folder):
    raise ValueError(f"--targets={folder!r} is not a folder of target photos")
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(video.IMAGE_EXTENSIONS))
  if not names:
    raise ValueError(f"--targets={folder!r} holds no images")
  return [
    (
      os.path.splitext(n)[0],
      target_lib.prepare_target(
        video.read_image(os.path.join(folder, n)),
        int(model_config.image_size),
        need_landmarks=pipeline.needs_landmarks(model_config),
        where=f"target {n}",
      ),
    )
    for n in names
  ]


def build_cases(
  clips: Sequence[Clip],
  model_config,
  targets: Sequence[tuple[str, Target]] | None = None,
) -> tuple[list[P.Case], list[P.Case]]:
  """(reconstruction cases, cross-identity cases) at the model's resolution (see the module doc).

  `clips` are stored clips (square face crops); `targets` (name, prepared target photo) pairs.
  """
  prepared = prepare_clips(clips, model_config)
  recon = [P.reconstruction_case(clip, drv, lms) for clip, drv, lms in prepared]
  cross = [case for _, case in cross_identity_pairs(prepared, model_config, targets)]
  return recon, cross


def prepare_clips(clips: Sequence[Clip], model_config) -> list[tuple[Clip, np.ndarray, np.ndarray]]:
  """(clip, driving frames, their landmarks) at the model's resolution, for each clip."""
  prepared = []
  for clip in clips:
    drv, lms = pipeline.prepare_driving(clip, model_config, crop=False, need_landmarks=False)
    prepared.append((clip, drv, lms))
  return prepared


def cross_identity_pairs(
  prepared: Sequence[tuple[Clip, np.ndarray, np.ndarray]],
  model_config,
  targets: Sequence[tuple[str, Target]] | None = None,
) -> list[tuple[Clip, P.Case]]:
  """(driving clip, cross-identity case) for each case of `prepare_clips` output (module doc)."""
  size = int(model_config.image_size)
  cross = []
  for i, (clip, drv, lms) in enumerate(prepared):
    common = dict(
      driving=drv,
      driving_landmarks=lms,
      reference=clip.onset,
      apex=clip.apex,
      offset=clip.offset,
      action_units=clip.action_units,
      label=clip.label,
      fps=clip.fps,
    )
    if clip.ground_truth is not None:
      gt, gt_lms = images.resize_with_points(clip.ground_truth, clip.ground_truth_landmarks, size)
      case = P.Case(
        name=clip.name,
        target=gt[clip.onset],
        target_landmarks=None if gt_lms is None else gt_lms[clip.onset],
        target_name="held-out identity",
        ground_truth=gt,
        **common,
      )
      cross.append((clip, case))
    elif targets:
      for tname, tgt in targets:
        case = P.Case(
          name=f"{tname}_{clip.name}",
          target=tgt.image,
          target_landmarks=tgt.landmarks,
          target_name=tname,
          **common,
        )
        cross.append((clip, case))
    else:
      subject = clip.subject or clip.name
      others = [
        p for p in prepared[i + 1 :] + prepared[:i] if (p[0].subject or p[0].name) != subject
      ]
      if not others:
        continue
      oclip, odrv, olms = others[0]
      case = P.Case(
        name=f"{oclip.name}_{clip.name}",
        target=odrv[oclip.onset],
        target_landmarks=None if olms is None else olms[oclip.onset],
        target_name=oclip.name,
        **common,
      )
      cross.append((clip, case))
  return cross


def protocols_for(model_config, recognition: bool = False) -> tuple[str, ...]:
  """The protocols the model can be scored on: au_driven needs keypoints that follow landmarks, and
  recognition the recogniser's training clips (`recognition=True` when the caller has them)."""
  from me_fomm.prior.inputs import follows_landmarks

  out = ("reconstruction", "cross_identity")
  out += ("au_driven",) if follows_landmarks(model_config) else ()
  return out + (("recognition",) if recognition else ())


def au_motion_of(case: P.Case, au_model) -> AuMotion | None:
  """The case's clip as FACS codes with its onset/apex/offset (None when it has no code the model has)."""
  aus = tuple(a for a in case.action_units if a in au_model.patterns)
  t, onset = len(case.driving), case.reference
  offset = case.offset if case.offset is not None and onset + 1 < case.offset < t else t - 1
  if not aus or not onset + 1 < offset:
    return None
  apex = case.apex
  if apex is None or not onset < apex < offset:  # uncoded apex: the model's typical position
    apex = min(max(onset + round(au_model.apex_fraction * (offset - onset)), onset + 1), offset - 1)
  return AuMotion.parse(aus, au_model, timing=(t, onset, apex, offset), fps=case.fps)


def make_generate_fn(animator, progress: bool = True, au_model=None):
  """case -> generated frames: driven by the case's clip, or, with `au_model`, by its FACS codes alone."""

  def generate(case: P.Case) -> np.ndarray:
    driving, landmarks = case.driving, case.driving_landmarks
    if au_model is not None:
      target = Target(image=case.target, landmarks=case.target_landmarks, box=None, faces_found=1)
      driving, landmarks = None, au_motion_of(case, au_model).clip(target).landmarks
    return animator.run(
      case.target,
      driving,
      target_landmarks=case.target_landmarks,
      driving_landmarks=landmarks,
      reference=case.reference,
      progress=f"generating {case.name}" if progress else False,
    ).prediction

  return generate


def make_personalized_generate_fn(
  model: pipeline.LoadedModel,
  config,
  batch_size: int = 32,
  progress: bool = True,
  au_model=None,
  adapt_scale: bool = False,
):
  """Like `make_generate_fn`, but the generator is first fine-tuned on each new target photo alone
  (`me_fomm.generate.personalize`, test-time personalisation); one fine-tuning per target identity."""
  import hashlib

  from me_fomm.generate.animate import Animator
  from me_fomm.generate.personalize import Personalizer

  pz = Personalizer(model.models, model.config, config)
  cache = {}

  def generate(case: P.Case) -> np.ndarray:
    # One fine-tuning per target identity (cases of one target photo set share `target_name`).
    key = case.target_name or hashlib.sha1(np.ascontiguousarray(case.target).tobytes()).hexdigest()
    if key not in cache:
      t0 = time.time()
      v = pz.run(model.variables, case.target, case.target_landmarks)
      log.info(
        "personalised the generator on target %s (%d steps, %.0f s)",
        case.target_name or case.name,
        pz.cfg.steps,
        time.time() - t0,
      )
      cache.clear()
      cache[key] = Animator(
        model.models, v, model.config, adapt_scale=adapt_scale, batch_size=batch_size
      )
    return make_generate_fn(cache[key], progress, au_model)(case)

  return generate


def evaluate(
  model: pipeline.LoadedModel,
  clips: Sequence[Clip],
  out_dir: str,
  targets: Sequence[tuple[str, Target]] | None = None,
  protocols=("reconstruction", "cross_identity"),
  batch_size: int = 32,
  meta: dict | None = None,
  analyzer: M.FaceAnalyzer | None = None,
  progress: bool = True,
  verdicts_fn=None,
  personalize=None,
  recognition=None,
  au_model=None,
  descriptor_every: int = 1,
  adapt_scale: bool = False,
) -> dict:
  """Scores `protocols` for the model and the baseline and writes the report into `out_dir`.

  `adapt_scale`: the generated motion is scaled by the target's face size against the driving
  face's (FOMM's adapt_movement_scale: the square root of their keypoint hull areas' ratio); it
  matters in cross-identity cases, where the faces differ (a clip drives itself at scale 1).
  `descriptor_every`: identity descriptors (AED) on every k-th frame only (`M.FaceAnalyzer`); 1 is
  FOMM's protocol.

  `personalize` (a `me_fomm.generate.personalize.PersonalizeConfig`): cross-identity targets are generated
  after test-time fine-tuning of the generator on the target photo alone (reconstruction is not).
  `au_model`: the AU motion model of the au_driven protocol (an AUModel or a file; None = the default).

  `recognition` (a `me_fomm.evaluate.recognition.RecognitionSetup`, needed by the `recognition`
  protocol): the recogniser's training clips and the clips to generate from (default: `clips`).

  `verdicts_fn(summaries) -> {name: {'passed': bool, 'text': str}}` adds statements to the report (demo).
  Returns {'summaries': {protocol: summary}, 'verdicts': ..., 'paths': {...}}.
  """
  check_protocols(protocols)
  if "recognition" in protocols and recognition is None:
    raise ValueError(
      "the recognition protocol needs the recogniser's training clips "
      "(recognition=me_fomm.evaluate.recognition.RecognitionSetup(...))"
    )
  if "au_driven" in protocols:
    from me_fomm.generate.animate import check_landmark_driving
    from me_fomm.prior import au_motion

    check_landmark_driving(model.config)
    au_model = au_model if isinstance(au_model, au_motion.AUModel) else au_motion.load(au_model)
  if analyzer is None:
    from me_fomm.prior.landmarks import LandmarkDetector

    # The frames are upscaled to >= 256 px before detection, where faces are >= 100 px: no upsampling.
    analyzer = M.FaceAnalyzer(LandmarkDetector(upsample=0), descriptor_every=descriptor_every)
  animator = pipeline.make_animator(model, adapt_scale=adapt_scale, batch_size=batch_size)
  gen_cross = (
    make_personalized_generate_fn(model, personalize, batch_size, progress, adapt_scale=adapt_scale)
    if personalize
    else make_generate_fn(animator, progress)
  )
  recon, cross = build_cases(clips, model.config, targets)
  coded, gen_au = [], None
  if "au_driven" in protocols:
    coded = [c for c in cross if au_motion_of(c, au_model) is not None]
    gen_au = (
      make_personalized_generate_fn(
        model, personalize, batch_size, progress, au_model, adapt_scale=adapt_scale
      )
      if personalize
      else make_generate_fn(animator, progress, au_model)
    )
  results, timings = {}, {}
  for name, cases, fn, gen in (
    ("reconstruction", recon, P.score_reconstruction, make_generate_fn(animator, progress)),
    ("cross_identity", cross, P.score_cross_identity, gen_cross),
    ("au_driven", coded, P.score_cross_identity, gen_au),
  ):
    if name not in protocols or not cases:
      continue
    t0 = time.time()
    log.info("evaluate: %s on %d clips", name, len(cases))
    results[name] = fn(cases, gen, analyzer)
    timings[f"{name}_seconds"] = round(time.time() - t0, 1)
  if "au_driven" in results and "cross_identity" in results:
    # Beside each AU-driven case, the same case driven by its clip (one row of the same table).
    by_clip = {id(s.case): s for s in results["cross_identity"]}
    for s in results["au_driven"]:
      s.values[P.CLIP_DRIVEN] = by_clip[id(s.case)].values[P.MODEL]
      if P.MODEL in by_clip[id(s.case)].tracks:
        s.tracks[P.CLIP_DRIVEN] = by_clip[id(s.case)].tracks[P.MODEL]
  summaries = {k: P.summarize(v) for k, v in results.items()}
  if "recognition" in protocols:
    from me_fomm.evaluate import recognition as R

    t0 = time.time()
    pairs = cross_identity_pairs(
      prepare_clips(recognition.clips or clips, model.config), model.config, targets
    )
    log.info("evaluate: recognition on %d clips", len(pairs))
    summaries["recognition"] = R.score_recognition(pairs, gen_cross, recognition)
    timings["recognition_seconds"] = round(time.time() - t0, 1)
  verdicts = verdicts_fn(summaries) if verdicts_fn else None
  meta = dict(meta or {})
  if "au_driven" in results:
    meta["au_model"] = au_model.source
  if personalize:
    meta["personalize_steps"] = int(personalize.steps)
  meta.update(
    checkpoint=model.checkpoint,
    variant=model.config.variant,
    image_size=int(model.config.image_size),
    clips=len(clips),
    descriptor_every=analyzer.descriptor_every,
    adapt_scale=bool(adapt_scale),
    **timings,
  )
  paths = report_lib.write_report(
    out_dir, results, meta=meta, verdicts=verdicts, recognition=summaries.get("recognition")
  )
  return {"summaries": summaries, "verdicts": verdicts, "paths": paths, "results": results}
