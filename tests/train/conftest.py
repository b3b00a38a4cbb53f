"""Training tests compile the same tiny programs in several places (in-process runs, resumed runs,
subprocesses, and under `pytest -n` several workers); a persistent compilation cache shared by all
of them compiles each program once.

The cache is switched on only while this folder's tests run, then off again for the session.
"""

import json

import jax
import pytest

# pytest's default (prepend) import mode puts this folder on sys.path: tiny_setup imports as a module.
import tiny_setup
from tiny_setup import shared_dir


@pytest.fixture(scope="session")
def compile_cache_dir(tmp_path_factory):
  return str(shared_dir(tmp_path_factory, "me_fomm_train_jax_cache"))


@pytest.fixture(autouse=True, scope="module")
def persistent_compile_cache(compile_cache_dir):
  from jax.experimental.compilation_cache import compilation_cache as cc

  names = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
  )
  old = {n: getattr(jax.config, n) for n in names}
  jax.config.update("jax_compilation_cache_dir", compile_cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  cc.reset_cache()
  yield compile_cache_dir
  for n, v in old.items():
    jax.config.update(n, v)
  cc.reset_cache()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted 12-step run (checkpoints at 8 and 12), made once per test run (pytest -n
  workers share it). Tests that change it work on a copy."""
  from me_fomm.train import trainer

  shared = shared_dir(tmp_path_factory, "me_fomm_train_reference")
  workdir, done = str(shared / "run"), shared / "result.json"
  with tiny_setup.exclusive(shared / "lock"):
    if not done.exists():
      result = trainer.train(tiny_setup.trainer_config(), workdir, data_fn=tiny_setup.tiny_data_fn)
      done.write_text(json.dumps(result))
  return workdir, json.loads(done.read_text())
