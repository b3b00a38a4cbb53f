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
