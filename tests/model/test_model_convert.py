"""The checkpoint converter and `me-fomm convert`: name/shape mapping, SN folding, misfits, Orbax round trip."""

from __future__ import annotations

import os
import subprocess
import sys

from model_reference import REF_DIR, get_reference
import numpy as np
import pytest

from me_fomm import convert
from me_fomm.model import config as config_lib


def _fomm_npz():
  return os.path.join(REF_DIR, "fomm_small_s0.npz")


def test_conversion_maps_layouts_and_folds_spectral_norm(fomm_ref):
  a, v = fomm_ref.arrays, fomm_ref.variables
  torch_w = a["state/kp_detector/predictor.encoder.down_blocks.1.conv.weight"]
  np.testing.assert_array_equal(
    v["kp_detector"]["params"]["predictor"]["encoder"]["down_blocks_1"]["conv"]["kernel"],
    np.transpose(torch_w, (2, 3, 1, 0)),
  )  # OIHW -> HWIO
  bn = v["generator"]["batch_stats"]["bottleneck"]["r0"]["norm2"]
  np.testing.assert_array_equal(bn["var"], a["state/generator/bottleneck.r0.norm2.running_var"])
  conv = v["discriminator"]["params"]["discs_1"]["down_blocks_2"]["conv"]
  stats = v["discriminator"]["batch_stats"]["discs_1"]["down_blocks_2"]["conv"]
  w = np.transpose(conv["kernel"], (3, 2, 0, 1)).reshape(conv["kernel"].shape[-1], -1)
  # Folded: u^T W v = 1 on the stored singular vectors, so our eval sigma is 1 and the output is torch's.
  assert float(stats["u"] @ w @ stats["v"]) == pytest.approx(1.0, abs=1e-5)
  orig = a["state/discriminator/discs.1.down_blocks.2.conv.weight_orig"]
  sigma = (
    a["state/discriminator/discs.1.down_blocks.2.conv.weight_u"]
    @ orig.reshape(orig.shape[0], -1)
    @ a["state/discriminator/discs.1.down_blocks.2.conv.weight_v"]
  )
  np.testing.assert_allclose(w, orig.reshape(orig.shape[0], -1) / sigma, rtol=1e-5)


def test_npz_without_state_prefix_and_torch_not_imported(tmp_path):
  with np.load(_fomm_npz()) as data:
    plain = {k[len("state/") :]: data[k] for k in data.files if k.startswith("state/")}
  path = tmp_path / "plain.npz"
  np.savez(path, **plain)
  state = convert.load_state_dicts(str(path))
  assert sorted(state) == ["discriminator", "generator", "kp_detector"]
  assert len(state["generator"]) == len([k for k in plain if k.startswith("generator/")])
  # Reading .npz never needs torch (a fresh interpreter proves nothing imported it).
  code = (
    f"import sys; from me_fomm import convert; convert.load_state_dicts({str(path)!r}); "
    "assert 'torch' not in sys.modules"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_misfit_lists_every_problem(tmp_path):
  with np.load(_fomm_npz()) as data:
    arrays = {k: data[k] for k in data.files if k.startswith("state/")}
  del arrays["state/kp_detector/kp.bias"]
  arrays["state/kp_detector/extra.weight"] = np.zeros((2, 2, 3, 3), np.float32)
  arrays["state/generator/final.weight"] = np.zeros((3, 8, 7, 7), np.float32)
  path = tmp_path / "bad.npz"
  np.savez(path, **arrays)
  cfg = get_reference("fomm_small_s0").cfg
  with pytest.raises(ValueError) as e:
    convert.convert_state_dicts(convert.load_state_dicts(str(path)), cfg)
  msg = str(e.value)
  assert "3 problem(s)" in msg
  assert "missing params/kp/bias" in msg
  assert "extra.weight: unexpected" in msg
  assert "final.weight: shape (3, 8, 7, 7)" in msg
  # The full-size config does not fit the small fixture: all of it is reported at once.
  with pytest.raises(ValueError, match=r"does not fit the 'fomm' config \(\d{3} problem"):
    convert.convert_state_dicts(
      convert.load_state_dicts(_fomm_npz()), config_lib.model_config("fomm")
    )


def test_convert_command_round_trip(tmp_path):
  from me_fomm import checkpoint
  from me_fomm.commands import convert as convert_cmd
  from me_fomm.commands.options import make

  def convert(input_path, config, output, **kw):
    return convert_cmd.run(
      make(convert_cmd.OPTIONS, input=input_path, config=config, output=output, **kw)
    )

  ref = get_reference("fomm_small_s0")
  out = str(tmp_path / "ckpt")
  config_path = os.path.join(REF_DIR, "fomm_small_s0.json")
  convert(_fomm_npz(), config_path, out)
  cfg, variables = checkpoint.load_models(out, expect=ref.cfg)
  assert cfg.variant == "fomm" and cfg.kp_detector.block_expansion == 8
  import jax

  got = jax.tree_util.tree_leaves_with_path(variables)
  want = dict(jax.tree_util.tree_leaves_with_path(ref.variables))
  assert len(got) == len(want)
  for path, leaf in got:
    np.testing.assert_array_equal(leaf, want[path])
  with pytest.raises(FileExistsError, match="--overwrite"):
    convert(_fomm_npz(), config_path, out)
  convert(_fomm_npz(), config_path, out, overwrite=True)
  with pytest.raises(ValueError, match="--input is required"):
    convert("", "fomm", out)


def test_pth_tar_through_torch(tmp_path):
  torch = pytest.importorskip("torch")  # the optional `convert` extra
  with np.load(_fomm_npz()) as data:
    ckpt = {
      m: {
        k.split("/", 2)[2]: torch.tensor(data[k]) for k in data.files if k.startswith(f"state/{m}/")
      }
      for m in convert.MODULES
    }
  ckpt["kp_detector"] = {
    "module." + k: t for k, t in ckpt["kp_detector"].items()
  }  # DataParallel names
  ckpt["epoch"] = 3
  path = tmp_path / "vox.pth.tar"
  torch.save(ckpt, path)
  state = convert.load_state_dicts(str(path))
  ref = get_reference("fomm_small_s0")
  variables = convert.convert_state_dicts(state, ref.cfg)
  np.testing.assert_array_equal(
    variables["kp_detector"]["params"]["kp"]["bias"],
    ref.variables["kp_detector"]["params"]["kp"]["bias"],
  )
