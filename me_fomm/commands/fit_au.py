r"""`me-fomm fit-au`: fit the AU motion model on a FACS-coded corpus; writes a model file for `--au_model`.

    me-fomm fit-au --dataset=casme2 --data_dir=~/tensorflow_datasets --out=au_casme2.json
    me-fomm generate --checkpoint=runs/tip24 --target=face.jpg --au=4+7 --au_model=au_casme2.json --out=...

Every clip with AU codes (CASME II, SAMM, or the composite `megc`) gives one sample: the apex-minus-onset
motion of its stored landmarks, aligned on the landmarks no AU moves and normalised by the inter-ocular
distance (`me_fomm.prior.au_fit`). A ridge regression on the AU codes gives one pattern per AU coded in at
least --min_clips clips; the error on held-out subjects is printed and stored in the file. The envelope is
the corpus's median onset-to-offset duration and apex position.
"""

from __future__ import annotations

import logging
import os

from me_fomm.commands import options as O

OPTIONS = (
  O.string(
    "dataset",
    None,
    "Prepared corpus with AU codes: casme2, samm or megc (any prepared dataset that codes AUs).",
    required=True,
  ),
  O.string("data_dir", None, "TFDS data dir (where `me-fomm prepare` wrote it).", required=True),
  O.string("out", None, "Model file to write (JSON), e.g. au_casme2.json.", required=True),
  O.real(
    "ridge", 0.1, "Ridge strength lambda, in clips (an AU coded n times shrinks n/(n+lambda))."
  ),
  O.integer("min_clips", 3, "AUs coded in fewer clips get no pattern."),
  O.integer("folds", 5, "Folds of whole subjects for the held-out error."),
  O.integer("image_size", None, "Stored resolution to read (default: the dataset's default)."),
  O.OVERWRITE,
)

log = logging.getLogger("me_fomm.fit_au")
SPLITS = ("train", "validation", "test")


def coded_clips(source) -> tuple[list, list, list, list, dict]:
  """(apex displacements, AU codes, subjects, timings, skipped {reason: count}) of a source's clips."""
  import numpy as np

  from me_fomm.data import folds, vocab
  from me_fomm.prior import au_fit

  disp, codes, subjects, timings, skipped = [], [], [], [], {}

  def skip(reason):
    skipped[reason] = skipped.get(reason, 0) + 1

  for i in range(len(source)):
    rec = source[i]
    aus = [a for a in vocab.parse_action_units(rec.get("action_units")) if a in vocab.AU_VOCAB]
    onset, apex = int(rec["onset"]), int(rec["apex"])
    lms = np.asarray(rec["landmarks"], np.float64)
    borrowed = np.asarray(rec.get("landmark_borrowed", np.zeros(len(lms), bool)))
    if not aus:
      skip("no AU code")
    elif not 0 <= onset < apex < len(lms):
      skip("no apex after the onset")
    elif borrowed[onset] or borrowed[apex]:
      skip("onset or apex landmarks borrowed from a neighbouring frame")
    else:
      disp.append(au_fit.apex_displacement(lms[onset], lms[apex]))
      codes.append(tuple(aus))
      subjects.append(folds.subject_key(rec))
      timings.append((onset, apex, int(rec.get("offset", -1)), float(rec.get("fps", 0) or 0)))
  return disp, codes, subjects, timings, skipped


def run(opts, source=None) -> dict:
  """Fits and writes the model; `source` (random access over clip records) replaces reading --data_dir."""
  import numpy as np

  from me_fomm.data import sources
  from me_fomm.prior import au_fit

  out = os.path.abspath(opts.out)
  if os.path.exists(out) and not opts.overwrite:
    raise FileExistsError(f"--out={out} already exists; pass --overwrite to replace it")
  if not opts.min_clips >= 1 or not opts.folds >= 2:
    raise ValueError(
      f"--min_clips must be >= 1 and --folds >= 2, got {opts.min_clips}, {opts.folds}"
    )
  parts = [source] if source is not None else []
  if source is None:
    for split in SPLITS:
      try:
        parts.append(sources.load(opts.dataset, opts.data_dir, split, image_size=opts.image_size))
      except ValueError:  # a split the build does not have
        continue
  disp, codes, subjects, timings, skipped = [], [], [], [], {}
  for part in parts:
    d, c, s, t, k = coded_clips(part)
    disp, codes, subjects, timings = disp + d, codes + c, subjects + s, timings + t
    for reason, n in k.items():
      skipped[reason] = skipped.get(reason, 0) + n
  if not disp:
    raise ValueError(
      f"--dataset={opts.dataset}: no clip with FACS codes and an apex to fit on (skipped: "
      f"{skipped or 'no clips'}); use a coded corpus (casme2, samm, megc)"
    )
  model = au_fit.fit(
    np.stack(disp),
    codes,
    subjects,
    lam=opts.ridge,
    min_clips=opts.min_clips,
    folds=opts.folds,
    timings=timings,
    source=f"fit on {opts.dataset}",
  )
  model.fit["skipped"] = skipped
  path = model.save(out)
  log.info("fit-au: %d clips of %d subjects -> %s", len(disp), model.fit["subjects"], path)
  return {"out": path, "model": model}


def show(result: dict) -> None:
  fit = result["model"].fit
  print(
    f"fitted {len(result['model'].aus)} AU patterns on {fit['clips']} clips of {fit['subjects']} subjects"
  )
  print("  clips per AU: " + ", ".join(f"AU{a}: {n}" for a, n in fit["counts"].items()))
  if fit.get("left_out"):
    print("  too rarely coded (no pattern): " + ", ".join(f"AU{a}" for a in fit["left_out"]))
  if fit.get("folds"):
    print(
      f"  held-out subjects ({fit['folds']} folds): landmark error {fit['held_out_error']:.4f} IOD "
      f"(no motion: {fit['zero_motion_error']:.4f}), explained {fit['explained']:.1%}"
    )
  else:
    print(f"  {fit.get('note', 'no held-out error')}")
  if "duration_ms" in fit:
    print(f"  envelope: {fit['duration_ms']:.0f} ms, apex at {fit['apex_fraction']:.0%}")
  for reason, n in fit.get("skipped", {}).items():
    print(f"  skipped {n} clip(s): {reason}")
  print(f"model: {result['out']}")
