"""Generation from FACS action units with a tiny tip24 checkpoint: `me-fomm generate --au`, region control,
`me-fomm megc --au_templates`, and the one-line errors (unknown AU, a checkpoint that cannot follow
landmarks, --driving and --au together)."""

import os
import subprocess
import sys

import imageio.v2 as imageio
import jax
import numpy as np
import pytest
import skimage.data

from me_fomm import checkpoint
from me_fomm.commands import generate
from me_fomm.commands import megc as megc_cmd
from me_fomm.commands.options import make
from me_fomm.generate import pipeline, video
from me_fomm.generate import target as target_lib
from me_fomm.generate.driving import AuMotion
from me_fomm.model import abstract_variables, build_models, init_variables
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au
from me_fomm_experiments.configs.demo import tiny_model


def _checkpoint(folder, variant, run=True):
  """A tiny checkpoint: random weights, or zeros of the right shapes for one that is never run."""
  cfg = tiny_model(variant)
  models = build_models(cfg)
  if run:
    variables = init_variables(models, cfg, jax.random.PRNGKey(0))
  else:
    shapes = abstract_variables(models, cfg)
    variables = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  checkpoint.save_models(str(folder), variables, cfg)
  return str(folder)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("au")
  photo = root / "astronaut.png"
  imageio.imwrite(photo, skimage.data.astronaut())
  return {"root": root, "photo": str(photo), "tip24": _checkpoint(root / "tip24", "tip24")}


def test_generate_from_action_units(setup, tmp_path):
  opts = dict(checkpoint=setup["tip24"], target=setup["photo"], batch_size=8)
  r = generate.run(
    make(
      generate.OPTIONS,
      au="4+7",
      duration_ms=200,
      fps=50,
      out=str(tmp_path / "g"),
      side_by_side=True,
      draw_keypoints=True,
      **opts,
    ),
    progress=False,
  )
  assert r["frames"] == 10 and r["fps"] == 50  # duration x fps
  assert os.path.basename(r["files"]["generated_mp4"]) == "astronaut_au4+7.mp4"
  assert video.read_frames(r["files"]["generated_mp4"]).shape == (10, 64, 64, 3)
  # Side by side: the still target with its moving AU keypoints | target | generated.
  assert video.read_frames(r["files"]["side_by_side_mp4"]).shape[:3] == (10, 64, 3 * 64 + 4)
  # The animator is driven by the target's own landmarks moved by the patterns: the keypoints follow them.
  model = pipeline.load_model(setup["tip24"])
  tgt = target_lib.prepare_target(skimage.data.astronaut(), 64)
  clip = AuMotion.parse("12", fps=50, duration_ms=200).clip(tgt)
  assert clip.landmark_driven and clip.apex == 4 and clip.action_units == (12,)
  anim = pipeline.generate(pipeline.make_animator(model), tgt, clip, clip.frames, clip.landmarks)
  np.testing.assert_allclose(
    anim.kp_norm, au_px_to_value(landmarks_to_au(clip.landmarks), 64), atol=1e-5
  )
  corners = clip.landmarks[clip.apex, [48, 54]] - tgt.landmarks[[48, 54]]
  assert (corners[:, 1] < 0).all() and corners[0, 0] < 0 < corners[1, 0]  # AU12: up and outwards
  # Regions restrict the pattern: AU12 with the brows only does not move.
  still = AuMotion.parse("12").clip(tgt, regions=["brows"])
  np.testing.assert_allclose(still.landmarks, np.broadcast_to(tgt.landmarks, still.landmarks.shape))
  # A driving clip with --regions: accepted and checked.
  with pytest.raises(ValueError, match="choose from brows, eyes, nose, cheeks, mouth"):
    generate.run(make(generate.OPTIONS, au="12", regions=["lips"], out=str(tmp_path / "r"), **opts))
  with pytest.raises(ValueError, match="the vocabulary of the corpora is 1, 2, 4, 5, 6, 7, 9"):
    generate.run(make(generate.OPTIONS, au="4+99", out=str(tmp_path / "u"), **opts))
  with pytest.raises(ValueError, match="not both"):
    generate.run(make(generate.OPTIONS, au="4", driving="x.mp4", out=str(tmp_path / "b"), **opts))
  with pytest.raises(ValueError, match=r"--driving\) or FACS action units \(--au=4\+7\)"):
    generate.run(make(generate.OPTIONS, out=str(tmp_path / "n"), **opts))
  seed = _checkpoint(setup["root"] / "seed", "seed", run=False)
  with pytest.raises(ValueError, match="needs .*a tip24 checkpoint.*this one is seed"):
    generate.run(
      make(generate.OPTIONS, **dict(opts, checkpoint=seed), au="12", out=str(tmp_path / "s"))
    )
  assert not any((tmp_path / n).exists() for n in ("r", "u", "b", "n", "s"))


def test_megc_au_templates(setup, tmp_path):
  targets = tmp_path / "targets"
  targets.mkdir()
  for name in ("female", "male"):
    imageio.imwrite(targets / f"{name}.png", skimage.data.astronaut())
  res = megc_cmd.run(
    make(
      megc_cmd.OPTIONS,
      checkpoint=setup["tip24"],
      targets=str(targets),
      out=str(tmp_path / "m"),
      au_templates=True,
      duration_ms=100,
      fps=50,
      regions=["mouth", "brows", "eyes"],
    ),
    progress=False,
  )
  expected = {
    f"{t}_{c}"
    for t in ("female", "male")
    for c in (
      "negative_contempt_au4+7+14",
      "negative_sadness_au4+7+15+17",
      "positive_happiness_au6+12",
      "surprise_surprise_au1+2+5+26",
    )
  }
  assert set(res.files) == expected
  assert (
    video.read_frames(res.files["male_positive_happiness_au6+12"]["generated_mp4"]).shape[0] == 5
  )


def test_cli_unknown_au_is_one_line_exit_2(setup, tmp_path):
  proc = subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", "generate", "--checkpoint=nowhere"]
    + [f"--target={setup['photo']}", "--au=4+3", f"--out={tmp_path / 'o'}"],
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "unknown action unit(s) 3; the vocabulary" in lines[0], proc.stderr
  assert not (tmp_path / "o").exists()


def test_au_driven_protocol_beside_the_clip_driven(setup, synthetic_small, tmp_path):
  import json

  from me_fomm.data import sources
  from me_fomm.evaluate import protocols as P
  from me_fomm.evaluate import runner

  model = pipeline.load_model(setup["tip24"])
  assert runner.protocols_for(model.config)[-1] == "au_driven"
  assert "au_driven" not in runner.protocols_for(tiny_model("seed"))
  test = sources.load("synthetic_me/small_64", str(synthetic_small), "test")
  clips = runner.select_clips(test, max_clips=1)
  result = runner.evaluate(
    model,
    clips,
    str(tmp_path / "r"),
    protocols=("cross_identity", "au_driven"),
    batch_size=16,
    progress=False,
  )
  au = result["results"]["au_driven"][0]
  clip = result["results"]["cross_identity"][0]
  assert au.case is clip.case and au.case.action_units == clips[0].action_units != ()
  assert au.generated.shape == clip.generated.shape  # the clip's own timing, frame for frame
  assert not np.allclose(au.generated, clip.generated)  # generated from the codes, not the frames
  assert au.values[P.CLIP_DRIVEN] == clip.values[P.MODEL]
  doc = json.load(open(result["paths"]["metrics"]))
  summary = doc["protocols"]["au_driven"]["summary"]
  assert {"model", "clip_driven", "copy_target", "ground_truth"} <= set(summary)
  assert "gt_akd" in summary["model"] and "motion_correlation" in summary["clip_driven"]
  assert doc["meta"]["au_model"] == "default"
  page = open(result["paths"]["html"]).read()
  assert "clip-driven" in page and "rendered from the same default AU patterns" in page
