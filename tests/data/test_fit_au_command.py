"""`me-fomm fit-au` on the fake CASME II corpus (built by its real builder from the fake download): one
sample per coded clip, held-out subjects, a model file that generation loads."""

import json

import numpy as np
import pytest

from me_fomm.commands import fit_au
from me_fomm.commands.options import make
from me_fomm.prior import au_motion
from me_fomm_datasets.casme2 import casme2_dataset_builder as C
from me_fomm_datasets.common.testing import built

casme2 = built(C.Casme2, "64", "casme2")


def test_fit_au_on_the_fake_casme2(casme2, tmp_path):
  data_dir = str(casme2.data_dir_root)
  out = tmp_path / "au.json"
  opts = make(fit_au.OPTIONS, dataset="casme2/64", data_dir=data_dir, out=str(out), min_clips=1)
  result = fit_au.run(opts)
  fit = result["model"].fit
  # The fake download codes 12, 4+7, L1+R2 and 14 (and 12 again on a subject whose frames are truncated).
  assert set(result["model"].aus) <= {1, 2, 4, 7, 12, 14} and {4, 7, 14} <= set(result["model"].aus)
  assert fit["clips"] >= 4 and fit["subjects"] >= 3 and fit["folds"] >= 2
  assert np.isfinite(fit["held_out_error"]) and fit["zero_motion_error"] > 0
  doc = json.load(open(out))
  assert doc["format"] == au_motion.FORMAT and doc["fit"]["counts"]
  model = au_motion.load(str(out))
  assert model.scale == 1.0 and model.source.startswith("au.json: fit on casme2")
  assert 0 < model.apex_fraction < 1 and model.duration_ms > 0
  fit_au.show(result)
  with pytest.raises(FileExistsError, match="--overwrite"):
    fit_au.run(opts)
  with pytest.raises(ValueError, match="no action unit is coded in at least 50"):
    fit_au.run(make(fit_au.OPTIONS, **dict(opts.to_dict(), overwrite=True, min_clips=50)))
  # A corpus without codes (SMIC's layout: empty action_units) is refused with the reason.
  records = [dict(casme2.as_data_source("train")[0], action_units="")]
  with pytest.raises(ValueError, match="no clip with FACS codes"):
    fit_au.run(make(fit_au.OPTIONS, **dict(opts.to_dict(), overwrite=True)), source=records)
