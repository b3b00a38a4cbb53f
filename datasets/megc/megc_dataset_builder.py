"""megc: the MEGC2019 composite of SMIC-HS, CASME II and SAMM with three classes.

Composite Database Evaluation (See et al., MEGC2019, IEEE FG 2019): negative = anger,
contempt, disgust, sadness, fear (SAMM) and disgust, repression (CASME II); positive =
happiness; surprise = surprise; SMIC-HS keeps its three classes; every other emotion is left
out. The corpus of origin is kept in `corpus`, and subjects are prefixed with it
('casme2/sub01') so leave-one-subject-out folds stay per person.

The manual folder holds the three corpora side by side, each laid out as its own builder
expects (CASME2-RAW + coding sheet, SAMM + FACS sheet, SMIC_all_raw). A corpus that is
absent is left out with a note in the build report; with none present the build fails.
"""

from __future__ import annotations

from me_fomm_datasets.casme2 import casme2_dataset_builder as casme2
from me_fomm_datasets.common import builder as B
from me_fomm_datasets.samm import samm_dataset_builder as samm
from me_fomm_datasets.smic import smic_dataset_builder as smic

# corpus -> {annotated emotion: three-class label}; emotions not listed are left out.
MEGC2019_CLASSES = {
  "samm": {
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "sadness": "negative",
    "fear": "negative",
    "happiness": "positive",
    "surprise": "surprise",
  },
  "casme2": {
    "disgust": "negative",
    "repression": "negative",
    "happiness": "positive",
    "surprise": "surprise",
  },
  "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}

INSTRUCTIONS = f"""\
Put the three corpora side by side in one folder, each as its own instructions say:
  <manual_dir>/CASME2-RAW/...  <manual_dir>/CASME2-coding-20140508.xlsx
  <manual_dir>/SAMM/...        <manual_dir>/SAMM_Micro_FACS_Codes_v2.xlsx
  <manual_dir>/SMIC_all_raw/HS/...
then run: me-fomm prepare --dataset=megc --manual_dir=<manual_dir> --data_dir=<data_dir>
CASME II: {casme2.INSTRUCTIONS}
SAMM: {samm.INSTRUCTIONS}
SMIC: {smic.INSTRUCTIONS}"""


def composite_specs(manual_dir: str, notes: list) -> list:
  readers = {
    "casme2": lambda: casme2.clip_specs(manual_dir, "casme2"),
    "samm": lambda: samm.clip_specs(manual_dir, "samm"),
    "smic": lambda: smic.clip_specs(manual_dir, "hs", "smic"),
  }
  out, missing = [], {}
  for corpus, read in readers.items():
    try:
      specs = read()
    except FileNotFoundError as e:
      missing[corpus] = str(e).splitlines()[0]
      continue
    kept = 0
    for spec in specs:
      label = MEGC2019_CLASSES[corpus].get(spec.emotion.lower())
      if label is None and not spec.problem:
        continue
      spec.label = label or "other"
      spec.subject = f"{corpus}/{spec.subject}"
      out.append(spec)
      kept += 1
    notes.append(f"{corpus}: {kept} of {len(specs)} clips are in the MEGC2019 classes")
  if not out:
    raise FileNotFoundError(
      f"megc: none of CASME II, SAMM, SMIC found in {manual_dir}:\n"
      + "\n".join(f"  {c}: {m}" for c, m in missing.items())
    )
  for corpus, msg in missing.items():
    notes.append(f"{corpus} left out: {msg}")
  return out


class Megc(B.ClipBuilder):
  """MEGC2019 composite (SMIC-HS + CASME II + SAMM), three classes (see module doc)."""

  name = "megc"
  CORPUS = ""  # per clip
  DESCRIPTION = __doc__
  HOMEPAGE = "https://facial-micro-expressiongc.github.io/MEGC2019/"
  CITATION = (
    "See J, Yap MH, Li J, Hong X, Wang S-J. MEGC 2019 - The Second Facial "
    "Micro-Expressions Grand Challenge. IEEE FG 2019."
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  BUILDER_CONFIGS = B.standard_configs()

  def _clip_specs(self, manual_dir):
    return {"train": composite_specs(manual_dir, self.report.notes)}


Builder = Megc
