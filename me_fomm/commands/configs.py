"""Training configs by name or by file: `--config=demo:tip24`, `--config=seed:casme2`, `--config=my.py:arg`.

The configs in `experiments/configs/` are installed (package `me_fomm_experiments.configs`), so a command
can name them from any folder; a path to a config file works too. Either takes big_vision's
`get_config(arg)` argument after a colon. `--config.<field>=<value>` overrides go through ml_collections'
config flags, which `define_config_flag` defines with this name resolution in front.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import pkgutil

from absl import flags
import ml_collections
from ml_collections import config_flags

# Modules of the configs package that are building blocks, not configs.
_NOT_CONFIGS = ("base",)


class ConfigSpecError(ValueError):
  """A --config value that names no config, or a config file that fails to load."""


def builtin_dir() -> str:
  spec = importlib.util.find_spec("me_fomm_experiments.configs")
  return os.path.dirname(spec.origin)


def builtin_names() -> list[str]:
  names = [m.name for m in pkgutil.iter_modules([builtin_dir()])]
  return sorted(n for n in names if n not in _NOT_CONFIGS and not n.startswith("_"))


def config_file(spec: str) -> tuple[str, str | None]:
  """`name[:arg]` or `path[:arg]` -> (path of the config file, arg or None).

  A name is a built-in config (`demo`, `seed`, ...); anything else must be an existing file.
  """
  if not spec:
    raise ConfigSpecError(
      "--config is empty; name a built-in config (" + _names_hint() + ") or a file"
    )
  where, colon, arg = spec.partition(":")
  arg = arg if colon else None
  if where in builtin_names():
    return os.path.join(builtin_dir(), where + ".py"), arg
  if os.path.isfile(where):
    return os.path.abspath(where), arg
  looked = os.path.abspath(where)
  base = os.path.splitext(os.path.basename(where))[0]
  hint = (
    f"; the built-in {base!r} is --config={base}{':' + arg if arg else ''}"
    if base in builtin_names()
    else ""
  )
  if not hint:
    close = difflib.get_close_matches(base, builtin_names(), n=1)
    hint = f"; did you mean --config={close[0]}?" if close else ""
  raise ConfigSpecError(
    f"--config={spec}: no config file at {looked} and no built-in config named {where!r}{hint} "
    f"(built-in configs, usable from any folder: {_names_hint()})"
  )


def _names_hint() -> str:
  return ", ".join(builtin_names())


def _module(path: str):
  name = "me_fomm_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigSpecError(
      f"config file {path} has no get_config(); see experiments/configs/demo.py"
    )
  return module


def load(spec: str) -> ml_collections.ConfigDict:
  """The config `spec` names (see `config_file`); its get_config's ValueError becomes ConfigSpecError."""
  path, arg = config_file(spec)
  module = _module(path)
  try:
    return module.get_config(arg) if arg is not None else module.get_config()
  except ValueError as e:
    raise ConfigSpecError(f"--config={spec}: {e}") from None


def expected_model_config(spec: str | None):
  """`--config` of generate / evaluate / megc: a model variant ('seed', 'fomm', 'tip24') or a training
  config (built-in name or file, `demo:tip24`); returns its model config, or None for an empty spec."""
  if not spec:
    return None
  from me_fomm.model.config import VARIANTS, model_config

  if spec in VARIANTS:
    return model_config(spec)
  try:
    config = load(spec)
  except ConfigSpecError as e:
    raise ConfigSpecError(f"{e}; or a model variant ({', '.join(VARIANTS)})") from None
  return config.model if "model" in config else config


class _NamedConfigFileParser(flags.ArgumentParser):
  """A config-file parser for ml_collections' config flag: built-in names, one-line errors."""

  def __init__(self, lock_config: bool = True):
    self._lock_config = lock_config

  def flag_type(self) -> str:
    return "config object"

  def parse(self, argument):
    if isinstance(argument, ml_collections.ConfigDict):
      return argument
    try:
      config = load(argument)
    except ConfigSpecError as e:
      # absl turns a parser's ValueError into "flag --config=...: <message>" (flags.Error).
      raise ValueError(str(e).removeprefix(f"--config={argument}: ")) from None
    if self._lock_config:
      config.lock()
    return config


def define_config_flag(name: str, default: str | None, help_text: str, module_name: str) -> None:
  """`--<name>=<config spec>` with `--<name>.<field>=<value>` overrides (ml_collections config flag)."""
  config_flags.DEFINE_config_file(name, default, help_text, lock_config=True)
  flags.FLAGS[name].parser = _NamedConfigFileParser(lock_config=True)
  # DEFINE_config_file files the flag under ml_collections' module; `--help` lists the command's.
  flags.FLAGS.register_key_flag_for_module(module_name, flags.FLAGS[name])


def describe_flag_error(error: Exception, argv) -> str:
  """One line for a mistake found while parsing flags: the flag, what is wrong, the fix.

  absl says what is wrong with a flag's value; a misspelt `--config.<field>` reaches us as the
  AttributeError of a locked ConfigDict, which we re-derive to name the field and its close match.
  """
  if isinstance(error, (AttributeError, KeyError)):
    line = _misspelt_override(argv)
    if line:
      return line
  text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  return text.removeprefix("flag ")


def _misspelt_override(argv) -> str | None:
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if spec is None:
    return None
  try:
    config = load(spec)
  except ConfigSpecError:
    return None
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg.split("=", 1)[0].removeprefix("--config.").split(".")
    node = config
    for depth, key in enumerate(path):
      keys = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      if key not in keys:
        where = ".".join(path[:depth]) or "the config"
        close = difflib.get_close_matches(key, keys, n=1)
        fix = (
          f"did you mean --config.{'.'.join(path[:depth] + [close[0]])}?"
          if close
          else f"fields of {where}: {', '.join(sorted(keys))}"
        )
        return f"{arg.split('=', 1)[0]}: {where} has no field {key!r}; {fix}"
      node = node[key]
  return None
