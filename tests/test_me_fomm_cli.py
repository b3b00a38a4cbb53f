"""The `me-fomm` dispatcher: usage, unknown commands, and per-command --help listing that command's flags."""

import subprocess
import sys

import pytest


def _run(*args):
  return subprocess.run(
    [sys.executable, "-m", "me_fomm.cli", *args], capture_output=True, text=True, timeout=300
  )


def test_usage_lists_every_command():
  r = _run()
  assert r.returncode == 2
  for name in ("demo", "prepare", "train", "generate", "megc", "evaluate", "convert"):
    assert name in r.stdout


def test_unknown_command_is_an_error():
  r = _run("trian")
  assert r.returncode == 2 and "unknown command 'trian'" in r.stderr


@pytest.mark.parametrize("command,flag", [("convert", "--input"), ("prepare", "--manual_dir")])
def test_help_lists_the_commands_flags(command, flag):
  r = _run(command, "--help")
  # absl ends --help with exit status 1, by design.
  assert r.returncode in (0, 1), r.stderr
  assert f"me-fomm {command}" in r.stdout and flag in r.stdout


def test_quiet_console_keeps_our_lines_and_errors_only():
  import logging
  import os

  import me_fomm
  from me_fomm.commands import options

  ours = os.path.join(os.path.dirname(me_fomm.__file__), "train", "trainer.py")
  theirs = os.path.join(os.path.dirname(logging.__file__), "orbax_like.py")
  keep = options._OursOrWarnings([os.path.dirname(me_fomm.__file__) + os.sep])

  def record(path, level):
    return logging.LogRecord("absl", level, path, 1, "msg", None, None)

  assert keep.filter(record(ours, logging.INFO))  # our progress lines
  assert keep.filter(
    record(ours, logging.WARNING)
  )  # our warnings (a damaged checkpoint moved aside)
  assert not keep.filter(record(theirs, logging.INFO))  # Orbax's registry, jax's 'tpu' backend line
  assert not keep.filter(record(theirs, logging.WARNING))  # TFDS's notes on the folders it scans
  assert keep.filter(record(theirs, logging.ERROR))  # an error is never hidden


_COMMAND = """
import logging, sys
from me_fomm.commands import options

class Module:
  OPTIONS = ()

  @staticmethod
  def run(opts):
    # A third-party library's lines (this file is not under me_fomm/) and one of ours.
    logging.getLogger("orbax").info("THIRD-PARTY-INFO")
    logging.getLogger("tfds").warning("THIRD-PARTY-WARNING")
    logging.getLogger("orbax").error("THIRD-PARTY-ERROR")
    from me_fomm.evaluate import runner
    runner.log.info("OUR-PROGRESS")

  @staticmethod
  def show(result):
    pass

options.script("me-fomm fake", (), lambda argv: options.run_command("fake", Module, argv), sys.argv)
"""


@pytest.mark.parametrize("flags", [(), ("--verbosity=1",), ("-v", "1")])
def test_console_is_quiet_by_default_and_full_with_verbosity(tmp_path, flags):
  script = tmp_path / "fake_command.py"
  script.write_text(_COMMAND)
  r = subprocess.run(
    [sys.executable, str(script), *flags], capture_output=True, text=True, timeout=120
  )
  assert r.returncode == 0, r.stderr
  assert "OUR-PROGRESS" in r.stderr and "THIRD-PARTY-ERROR" in r.stderr
  verbose = bool(flags)
  assert ("THIRD-PARTY-INFO" in r.stderr) == verbose, r.stderr
  assert ("THIRD-PARTY-WARNING" in r.stderr) == verbose, r.stderr
