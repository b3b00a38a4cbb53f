"""The XNNPACK switch: added once, only where asked and known, never over the user's own choice."""

import subprocess
import sys

from me_fomm import xla_cpu


def test_added_on_a_checked_jaxlib_only():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  assert xla_cpu.wanted(env, version=(0, 10))
  assert not xla_cpu.wanted(env, version=(9, 9))  # XLA aborts on a flag it does not know
  assert not xla_cpu.wanted({"ME_FOMM_XNNPACK": "0"}, version=(0, 10))
  assert not xla_cpu.wanted({"XLA_FLAGS": "--xla_cpu_use_xnnpack=false"}, version=(0, 10))


def test_enable_appends_to_the_users_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  if not xla_cpu.wanted(env):
    return  # this jaxlib is not one the flag was checked on: nothing to add
  xla_cpu.enable(env)
  assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4 " + xla_cpu.FLAG
  xla_cpu.enable(env)  # a second import adds nothing
  assert env["XLA_FLAGS"].count("xnnpack") == 1


def test_this_jaxlib_starts_with_the_flag():
  """The flag the import adds is one this jaxlib's XLA accepts (an unknown one aborts the process)."""
  code = "import me_fomm, os, jax; print(os.environ['XLA_FLAGS']); print(jax.numpy.ones(3).sum())"
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip().endswith("3.0")
