"""The main job end to end at toy size: demo --quick (build, train, generate, evaluate, report), then the
generate and megc commands on its trained checkpoint, and the bad inputs that need a checkpoint.

One test function on purpose: the trained checkpoint is the expensive part, and a module fixture would be
built once per pytest-xdist worker.
"""

import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageSequence
import pytest
import skimage.data

from me_fomm.checkpoint import CheckpointError
from me_fomm.commands import demo, generate
from me_fomm.commands import evaluate as evaluate_cmd
from me_fomm.commands import megc as megc_cmd
from me_fomm.commands.options import make
from me_fomm.data import megc_sources, sources
from me_fomm.data.clip import Clip
from me_fomm.generate import pipeline, video
from me_fomm.generate import target as target_lib
from me_fomm.prior.au_keypoints import au_px_to_value, landmarks_to_au


def test_demo_quick_then_generate_and_megc(tmp_path):
  work = tmp_path / "demo"
  # The seed variant (onset prior keypoints), whose animator properties are checked below; tip24 (the
  # demo default) is covered by tests/generate/test_animate.py.
  result = demo.run(
    make(demo.OPTIONS, workdir=str(work), quick=True, per_class=1, variant="seed"), progress=False
  )

  # --- demo: report, metrics with model and baseline side by side, the two verdicts, videos per class.
  doc = json.load(open(result["metrics"]))
  assert set(doc["protocols"]) == {"reconstruction", "cross_identity", "recognition"}
  # Recognition: generated vs ground truth (the ceiling) vs copy-the-target (the floor) on every
  # held-out clip, with STSTNet trained on the training identity (one fold).
  recog = doc["protocols"]["recognition"]["summary"]
  assert set(recog["rows"]) == {"model", "ground_truth", "driving", "copy_target"}
  assert recog["ceiling"] == "ground_truth" and recog["folds"] == 1 and recog["cases"] == 3
  # A clip that never moves has no flow: one class for all, chance recall.
  assert recog["rows"]["copy_target"]["uar"] == pytest.approx(1 / 3)
  assert "Recognition" in open(result["report"]).read()
  cross = doc["protocols"]["cross_identity"]["summary"]
  for key in (
    "motion_correlation",
    "apex_ratio",
    "gt_akd",
    "gt_akd_aligned",
    "gt_l1",
    "gt_lpips",
    "aed_to_target",
  ):
    assert key in cross["model"] and key in cross["copy_target"]
  # The baseline stands still: no motion measured, and it differs from the moving ground truth.
  assert cross["copy_target"]["motion_correlation"] == 0 and cross["copy_target"]["apex_ratio"] == 0
  assert cross["copy_target"]["gt_l1"] > 0
  # The ground truth is scored as a generation: the measurement's ceiling sees its motion.
  assert cross["ground_truth"]["motion_correlation"] > 0.3, cross["ground_truth"]
  # Each verdict is the comparison of the figures in the summary, and its text quotes them.
  verdicts = doc["verdicts"]
  assert set(verdicts) == {"motion_fidelity", "akd_ground_truth", "akd_ground_truth_motion"}
  # (null = not measurable: after 3 steps dlib may find no face in the toy model's frames.)
  m, b = (
    {k: float("nan") if v is None else v for k, v in cross[w].items()}
    for w in ("model", "copy_target")
  )
  assert verdicts["akd_ground_truth"]["passed"] == bool(m["gt_akd"] < b["gt_akd"])
  assert verdicts["motion_fidelity"]["passed"] == bool(
    m["motion_correlation"] > 0 and abs(m["apex_ratio"] - 1) < 1
  )
  assert f"{m['gt_akd']:.3f} px vs {b['gt_akd']:.3f} px" in verdicts["akd_ground_truth"]["text"]
  assert os.path.isfile(result["report"]) and "copy target" in open(result["report"]).read()
  # Per cross-identity clip: its trajectory plot, apex motion map and magnified GIF.
  report_dir = os.path.dirname(result["report"])
  for case in doc["protocols"]["cross_identity"]["cases"]:
    for key in ("trajectory", "motion_map", "magnified_gif"):
      assert os.path.isfile(os.path.join(report_dir, case[key])), (case["name"], key)
  assert any(p.endswith("_magnified.gif") for p in result["videos"])
  labels = {os.path.basename(p).split("_")[0] for p in result["videos"]}
  assert labels == {"negative", "positive", "surprise"}
  assert all(os.path.isfile(p) for p in result["videos"])
  with pytest.raises(FileExistsError, match="--overwrite"):
    demo.run(make(demo.OPTIONS, workdir=str(work), quick=True))

  # --- generate: a real photo driven by a corpus clip of the demo's data, read back.
  photo = str(tmp_path / "astronaut.png")
  imageio.imwrite(photo, skimage.data.astronaut())
  checkpoint = str(work / "train")
  data_dir = str(work / "data")
  test_clips = sources.load("synthetic_me/small_64", data_dir, "test")
  clip_id = test_clips[0]["clip_id"]
  n_frames = len(test_clips[0]["frames"])
  out = tmp_path / "gen"
  driving = f"synthetic_me/small_64:{clip_id}"
  gen_opts = make(
    generate.OPTIONS,
    checkpoint=checkpoint,
    target=photo,
    driving=driving,
    out=str(out),
    data_dir=data_dir,
    side_by_side=True,
    draw_keypoints=True,
    batch_size=4,
  )
  r = generate.run(gen_opts, progress=False)
  back = video.read_frames(r["files"]["generated_mp4"])
  assert back.shape == (n_frames, 64, 64, 3)
  # Pillow merges identical consecutive GIF frames (adding up their delays), so check the play time.
  gif = Image.open(r["files"]["generated_gif"])
  delays = [gif.info["duration"] for _ in ImageSequence.Iterator(gif)]
  assert gif.size == (64, 64) and sum(delays) == pytest.approx(
    n_frames * 1000 / video.gif_fps(r["fps"]), rel=0.05
  )
  assert video.read_frames(r["files"]["side_by_side_mp4"]).shape[:3] == (n_frames, 64, 3 * 64 + 4)

  # --- the animator: padding the last batch changes nothing; the seed's 'onset' prior keypoints.
  model = pipeline.load_model(checkpoint)
  clip = Clip.from_record(test_clips[0])
  drv, lms = pipeline.prepare_driving(clip, model.config)
  tgt = target_lib.prepare_target(skimage.data.astronaut(), 64)
  runs = [
    pipeline.make_animator(model, batch_size=b).run(
      tgt.image, drv, tgt.landmarks, lms, reference=clip.onset
    )
    for b in (4, 16)
  ]
  np.testing.assert_allclose(runs[0].prediction, runs[1].prediction, atol=2e-5)
  onset_values = au_px_to_value(landmarks_to_au(lms[clip.onset]), 64)
  np.testing.assert_allclose(
    runs[0].kp_driving, np.broadcast_to(onset_values, runs[0].kp_driving.shape), atol=1e-6
  )
  # Relative transfer with onset keypoints moves no keypoint value; the motion rides on the Jacobians.
  np.testing.assert_allclose(
    runs[0].kp_norm, np.broadcast_to(runs[0].kp_source, runs[0].kp_norm.shape), atol=1e-5
  )

  # --- me-fomm evaluate on the demo's data (one clip, one protocol: the demo already ran both).
  ev_opts = make(
    evaluate_cmd.OPTIONS,
    checkpoint=checkpoint,
    dataset="synthetic_me/small_64",
    data_dir=data_dir,
    out=str(tmp_path / "ev"),
    max_clips=1,
    protocols=["reconstruction"],
  )
  ev = evaluate_cmd.run(ev_opts, progress=False)
  ev_doc = json.load(open(ev["paths"]["metrics"]))
  assert list(ev_doc["protocols"]) == ["reconstruction"]
  assert ev_doc["protocols"]["reconstruction"]["summary"]["cases"] == 1
  assert os.path.isfile(ev["paths"]["html"]) and str(tmp_path / "ev") in ev["paths"]["html"]

  # --- bad inputs that need a checkpoint: existing output, checkpoint of another config.
  with pytest.raises(pipeline.OutputExistsError, match="--overwrite"):
    generate.run(make(generate.OPTIONS, **dict(gen_opts.to_dict(), side_by_side=False)))
  with pytest.raises(CheckpointError, match="kp_mode"):
    generate.run(
      make(generate.OPTIONS, **dict(gen_opts.to_dict(), out=str(tmp_path / "g2"), config="fomm"))
    )
  assert not (tmp_path / "g2").exists()

  # --- megc: a fake corpus holding the 9 challenge source clips, 2 target faces (megc2021).
  template = test_clips[0]
  fake = []
  for corpus, names in megc_sources.GENERATION_SOURCES.items():
    for label, name in zip((0, 1, 2), names):
      rec = dict(
        template,
        corpus=corpus,
        clip_id=f"s1/{name}" if corpus == "casme2" else name,
        subject="s1",
        label=label,
      )
      rec.pop("ground_truth_frames", None)
      fake.append(rec)
  targets = tmp_path / "targets"
  targets.mkdir()
  imageio.imwrite(targets / "female.png", skimage.data.astronaut())
  imageio.imwrite(
    targets / "male.png",
    np.asarray(
      imageio.imread(
        __import__("matplotlib.cbook", fromlist=["x"]).get_sample_data(
          "grace_hopper.jpg", asfileobj=False
        )
      )
    ),
  )

  def megc_opts(**kw):
    return make(
      megc_cmd.OPTIONS, checkpoint=checkpoint, targets=str(targets), out=str(tmp_path / "m"), **kw
    )

  with pytest.raises(ValueError, match="uses 4 target faces"):
    megc_cmd.run(megc_opts(protocol="megc2022"), source=fake)
  res = megc_cmd.run(megc_opts(batch_size=8), source=fake, progress=False)
  expected = {
    f"{t}_{c}_{corpus}_{n}"
    for t in ("female", "male")
    for corpus, names in megc_sources.GENERATION_SOURCES.items()
    for c, n in zip(("negative", "positive", "surprise"), names)
  }
  assert set(res.files) == expected and len(expected) == 18
  assert sorted(os.listdir(tmp_path / "m")) == sorted(
    f"{s}.{e}" for s in expected for e in ("mp4", "gif")
  )


def test_cli_reports_bad_input_with_exit_code_2(tmp_path):
  """The real console entry: a missing driving clip is one clear line on stderr, exit status 2."""
  photo = tmp_path / "face.png"
  imageio.imwrite(photo, skimage.data.astronaut()[:64, :64])
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "me_fomm.cli",
      "generate",
      "--checkpoint=nowhere",
      f"--target={photo}",
      f"--driving={tmp_path / 'missing.mp4'}",
      f"--out={tmp_path / 'o'}",
    ],
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )
  assert proc.returncode == 2, proc.stderr
  assert "me-fomm generate: error: driving clip" in proc.stderr and "not found" in proc.stderr
  assert not (tmp_path / "o").exists()
