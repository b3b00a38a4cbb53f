"""Faults around generated videos: ffmpeg started without a fork of the JAX process, ffmpeg's failures as
one line, and a full disk while `me-fomm generate` writes (one-line error, no partial folder, the previous
output unchanged)."""

import errno
import hashlib
import os
import subprocess
import sys
import warnings

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm import checkpoint
from me_fomm.commands import generate
from me_fomm.commands.options import make
from me_fomm.generate import pipeline, video
from me_fomm.model import build_models, init_variables
from me_fomm_experiments.configs.demo import tiny_model

_ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _frames(t=6, h=30, w=34):
  # Smooth content with a moving block: H.264 in yuv420p keeps it close.
  y, x = np.mgrid[0:h, 0:w]
  base = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 128)], -1)
  out = np.repeat(base[None].astype(np.uint8), t, axis=0)
  for i in range(t):
    out[i, 4:12, 2 + 2 * i : 10 + 2 * i] = 255
  return out


def _fork_warnings(caught):
  return [w for w in caught if "fork" in str(w.message)]


def test_mp4_round_trip_without_fork_while_jax_runs(tmp_path):
  jax.block_until_ready(jnp.arange(8.0).sum())  # JAX's backend and threads are up: it warns on fork
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # The control: a preexec_fn (what imageio-ffmpeg passes) forks, and JAX says so.
    subprocess.run(["true"], preexec_fn=os.getpid, check=True)
  assert _fork_warnings(caught), "JAX's fork warning is not observable here"

  frames = _frames()
  path = str(tmp_path / "a.mp4")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    video.write_mp4(path, frames, fps=200)
    back, fps = video.read_video(path)
  assert not _fork_warnings(caught), [str(w.message) for w in caught]
  assert back.shape == frames.shape and back.dtype == np.uint8
  assert np.abs(back.astype(float) - frames).mean() < 4  # crf 10: close to the input
  assert fps == pytest.approx(200)


def test_ffmpeg_failures_are_one_line(tmp_path):
  missing = str(tmp_path / "no_such_folder" / "a.mp4")
  with pytest.raises(video.VideoError, match="cannot write video") as e:
    video.write_mp4(missing, _frames(), fps=10)
  assert "\n" not in str(e.value) and not video.disk_full(e.value)
  with pytest.raises(video.VideoError, match="frame rate"):
    video.write_mp4(str(tmp_path / "b.mp4"), _frames(), fps=float("nan"))
  assert os.listdir(tmp_path) == []
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
  with pytest.raises(video.VideoError, match="cannot decode video .*ffmpeg") as e:
    video.read_video(str(broken))
  assert "\n" not in str(e.value)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_mp4_on_a_full_disk_is_recognised():
  # /dev/full answers every write with ENOSPC: ffmpeg's own report of a full disk.
  with pytest.raises(video.VideoError, match="No space left on device") as e:
    video.write_mp4("/dev/full", _frames(), fps=10)
  assert video.disk_full(e.value) and "\n" not in str(e.value)


def _fake_full_ffmpeg(tmp_path):
  """An ffmpeg that writes a little of its output file, then fails as ffmpeg does on a full disk."""
  script = tmp_path / "ffmpeg"
  script.write_text(
    "#!/bin/sh\n"
    "for last; do :; done\n"
    'cat > /dev/null; printf partial > "${last#file:}"\n'
    'echo "[out#0/mp4 @ 0x5] Error writing trailer: No space left on device" >&2\n'
    "exit 1\n"
  )
  script.chmod(0o755)
  return str(script)


def _snapshot(folder):
  return {
    name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
    for name in sorted(os.listdir(folder))
  }


def test_staged_output_disk_full_from_ffmpeg(tmp_path, monkeypatch):
  out = tmp_path / "out"
  with pipeline.staged_output(str(out)) as tmp:
    video.write_outputs(tmp, "clip", _frames(), fps=10)
  before = _snapshot(out)
  monkeypatch.setattr(video, "ffmpeg_exe", lambda: _fake_full_ffmpeg(tmp_path / "bin"))
  (tmp_path / "bin").mkdir()
  with pytest.raises(pipeline.OutputDiskFullError) as e:
    with pipeline.staged_output(str(out), overwrite=True) as tmp:
      video.write_outputs(tmp, "clip", _frames(), fps=10)
  message = str(e.value)
  assert "\n" not in message and str(out) in message
  assert "no space left" in message and "free there now" in message and "unchanged" in message
  assert sorted(os.listdir(tmp_path)) == ["bin", "out"] and _snapshot(out) == before
  # No previous output: none appears.
  with pytest.raises(pipeline.OutputDiskFullError, match="nothing was written there"):
    with pipeline.staged_output(str(tmp_path / "new")) as tmp:
      video.write_outputs(tmp, "clip", _frames(), fps=10)
  assert sorted(os.listdir(tmp_path)) == ["bin", "out"]


def test_staged_output_keeps_other_errors(tmp_path):
  with pytest.raises(OSError, match="Permission denied"):
    with pipeline.staged_output(str(tmp_path / "out")):
      raise PermissionError(errno.EACCES, "Permission denied")
  assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  """A tiny random fomm checkpoint (no landmarks needed), a photo and a frame-folder driving clip."""
  root = tmp_path_factory.mktemp("faults")
  cfg = tiny_model("fomm", image_size=32)
  models = build_models(cfg)
  checkpoint.save_models(
    str(root / "ckpt"), init_variables(models, cfg, jax.random.PRNGKey(0)), cfg
  )
  photo = root / "face.png"
  imageio.imwrite(photo, _frames(1, 32, 32)[0])
  clip = root / "clip"
  clip.mkdir()
  for i, f in enumerate(_frames(4, 32, 32)):
    imageio.imwrite(clip / f"f{i}.png", f)
  return {
    "root": root,
    "flags": dict(
      checkpoint=str(root / "ckpt"),
      target=str(photo),
      driving=str(clip),
      no_crop=True,
      side_by_side=True,
      batch_size=4,
    ),
  }


def _gif_fails_on_second_call(monkeypatch):
  """The second GIF write (the side-by-side one) runs out of space after writing part of its file."""
  real = video.write_gif
  calls = []

  def write_gif(path, frames, fps):
    calls.append(path)
    if len(calls) == 2:
      with open(path, "wb") as f:
        f.write(b"GIF89a")
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    return real(path, frames, fps)

  monkeypatch.setattr(video, "write_gif", write_gif)
  return calls


def test_generate_on_a_full_disk(job, tmp_path, monkeypatch):
  out = tmp_path / "gen"
  generate.run(make(generate.OPTIONS, out=str(out), **job["flags"]), progress=False)
  before = _snapshot(out)
  assert len(before) == 4  # generated and side-by-side, mp4 and GIF
  calls = _gif_fails_on_second_call(monkeypatch)
  opts = make(generate.OPTIONS, out=str(out), overwrite=True, **job["flags"])
  with pytest.raises(pipeline.OutputDiskFullError) as e:
    generate.run(opts, progress=False)
  assert len(calls) == 2  # it failed midway, with files written
  message = str(e.value)
  assert "\n" not in message and str(out) in message and "no space left" in message
  assert os.listdir(tmp_path) == ["gen"] and _snapshot(out) == before


_CLI = """
import errno, os, sys
from me_fomm.generate import video

def write_gif(path, frames, fps):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

video.write_gif = write_gif
from me_fomm.cli import main
main(sys.argv)
"""


def test_generate_command_on_a_full_disk_exits_2(job, tmp_path):
  out = tmp_path / "gen"
  flags = [f"--out={out}"] + [
    f"--{k}" if v is True else f"--{k}={v}" for k, v in job["flags"].items()
  ]
  r = subprocess.run(
    [sys.executable, "-c", _CLI, "generate", *flags],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 2, r.stderr
  errors = [line for line in r.stderr.splitlines() if "error:" in line]
  assert len(errors) == 1 and errors[0].startswith("me-fomm generate: error: disk full"), r.stderr
  assert str(out) in errors[0]
  assert os.listdir(tmp_path) == []
