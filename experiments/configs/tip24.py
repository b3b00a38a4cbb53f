"""The journal follow-up of the seed (tip24 variant): per-frame facial-prior keypoints and the
learned adaptive weighted prior mask; training as the seed.

`--config=tip24:casme2`; corpora as in seed.py.
"""

import ml_collections

from me_fomm.model.config import model_config
from me_fomm_experiments.configs import seed


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = seed.get_config(arg)
  c.name = c.name.replace("seed_", "tip24_")
  c.model = model_config("tip24")
  return c
