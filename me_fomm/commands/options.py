"""A command's flags, declared once as a table of `Option`s and read once into a ConfigDict.

Each `me_fomm.commands.<name>` module lists its flags in `OPTIONS` and does its job in `run(opts)`, where
`opts` is an `ml_collections.ConfigDict` with one field per option (as training takes its config). The
`me-fomm` dispatcher defines the chosen command's flags only (`define`), so no two modules compete for a
flag name or its default, and reads them back with `read`; tests and notebooks build the same ConfigDict
with `make(OPTIONS, field=value, ...)`. Options shared by several commands (the generation flags) are one
tuple, listed by each.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import logging
import os
import sys
from typing import Any, Callable, Sequence

from absl import flags
import ml_collections

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Option:
  """One flag: absl kind ('string', 'bool', 'integer', 'float', 'list', 'enum'), default, help."""

  name: str
  kind: str
  default: Any
  help: str
  choices: tuple = ()
  required: bool = False


def string(name, default, help_text, required=False) -> Option:
  return Option(name, "string", default, help_text, required=required)


def boolean(name, default, help_text) -> Option:
  return Option(name, "bool", default, help_text)


def integer(name, default, help_text) -> Option:
  return Option(name, "integer", default, help_text)


def real(name, default, help_text) -> Option:
  return Option(name, "float", default, help_text)


def strings(name, default, help_text) -> Option:
  return Option(name, "list", list(default) if default is not None else None, help_text)


def enum(name, default, choices, help_text) -> Option:
  return Option(name, "enum", default, help_text, choices=tuple(choices))


def config(name, default, help_text, required=False) -> Option:
  """A training config (`me_fomm.commands.configs`): `--name=demo:tip24` or a file, `--name.field=v`."""
  return Option(name, "config", default, help_text, required=required)


def define(options: Sequence[Option], module_name: str, flag_values=FLAGS) -> None:
  """Defines the flags of one command (`module_name` groups them for `--help`)."""
  for o in options:
    kwargs = dict(flag_values=flag_values, module_name=module_name)
    if o.kind == "config":
      from me_fomm.commands import configs

      configs.define_config_flag(o.name, o.default, o.help, module_name)
    elif o.kind == "enum":
      flags.DEFINE_enum(o.name, o.default, list(o.choices), o.help, **kwargs)
    else:
      getattr(flags, f"DEFINE_{o.kind}")(o.name, o.default, o.help, **kwargs)


def read(options: Sequence[Option], flag_values=FLAGS) -> ml_collections.ConfigDict:
  """The parsed values of `options` as a ConfigDict; a missing required option is a ValueError."""
  values = {o.name: flag_values[o.name].value for o in options}
  return make(options, **values)


def make(options: Sequence[Option], **values) -> ml_collections.ConfigDict:
  """Defaults of `options` with `values` on top (a name that is no option is a ValueError)."""
  names = [o.name for o in options]
  unknown = [k for k in values if k not in names]
  if unknown:
    hint = difflib.get_close_matches(unknown[0], names, n=1)
    raise ValueError(
      f"unknown option {unknown[0]!r}"
      + (f"; did you mean {hint[0]!r}?" if hint else f"; options: {', '.join(names)}")
    )
  out = {}
  for o in options:
    v = values.get(o.name, o.default)
    if o.kind == "list" and v is not None:
      v = list(v)
    if o.kind == "config" and isinstance(v, str):
      from me_fomm.commands import configs

      v = configs.load(v)
    out[o.name] = v
  missing = [f"--{o.name}" for o in options if o.required and out[o.name] in (None, "")]
  if missing:
    names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
    raise ValueError(f"{names} {'is' if len(missing) == 1 else 'are'} required (see --help)")
  # Not locked: a command may fill in derived fields (e.g. a resolved path) before handing it on.
  return ml_collections.ConfigDict(out)


# ------------------------------------------------------------------------- options of several commands

TRAINING_CONFIG = config(
  "config",
  None,
  "Training config: a built-in name (demo, seed, tip24, fomm_vox) or a config file, with get_config's "
  "argument after a colon (seed:casme2, demo:tip24, my.py:arg); override fields with --config.x=y.",
  required=True,
)
CHECKPOINT = string(
  "checkpoint",
  None,
  "Checkpoint folder (or a training workdir holding checkpoints/).",
  required=True,
)
STEP = integer("step", None, "Checkpoint step (default: the latest).")
OVERWRITE = boolean("overwrite", False, "Replace an existing output folder.")
EXPECT_CONFIG = string(
  "config",
  None,
  "Refuse a checkpoint whose model config differs from this one: a variant (seed, fomm, tip24), a "
  "built-in config (demo:tip24) or a config file.",
)
BATCH_SIZE = integer("batch_size", 32, "Frames per compiled batch.")
DATA_DIR = string("data_dir", None, "TFDS data dir (where `me-fomm prepare` wrote the records).")

# FOMM's adapt_movement_scale: generate, megc and evaluate (cross-identity).
ADAPT_SCALE = boolean(
  "adapt_scale", False, "Scale the relative motion by the ratio of the keypoint hull areas."
)

# How a driving clip's motion is transferred and what is written: generate and megc.
GENERATION = (
  BATCH_SIZE,
  boolean(
    "no_crop",
    False,
    "The target (and a file/folder driving clip) are already aligned face crops: only resize them.",
  ),
  boolean("absolute", False, "Absolute keypoints instead of motion relative to the onset frame."),
  ADAPT_SCALE,
  real("magnify", 1.0, "Motion magnification alpha (1 = as driven)."),
  strings(
    "regions",
    None,
    "Move (and --magnify) only these face regions' keypoints, e.g. mouth,brows (brows, eyes, nose, "
    "cheeks, mouth); the rest of the face holds still. Needs AU keypoints (seed, tip24).",
  ),
  boolean("side_by_side", False, "Also write driving | target | generated."),
  boolean(
    "draw_keypoints", False, "Draw the keypoints (on the side-by-side video, or a separate one)."
  ),
  OVERWRITE,
  EXPECT_CONFIG,
  STEP,
)


# A micro-expression from FACS action units instead of a clip (`--au` of generate, megc's --au_templates).
AU_MOTION = (
  string(
    "au_model",
    None,
    "AU motion model file from `me-fomm fit-au` (default: the patterns written from FACS).",
  ),
  real("intensity", 1.0, "Scales the AU patterns (1 = the AU model's)."),
  real(
    "duration_ms", None, "Onset-to-offset duration of an AU clip (default: the AU model's, 300 ms)."
  ),
)


def check_generation(opts) -> None:
  """The generation options' own ranges, checked before any work."""
  if opts.batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {opts.batch_size}")
  if not opts.magnify > 0:
    raise ValueError(f"--magnify must be > 0 (1 = motion as driven), got {opts.magnify}")
  if opts.regions:
    from me_fomm.prior.au_keypoints import parse_regions

    opts.regions = list(parse_regions(opts.regions))


# ------------------------------------------------------------------------------------ running a command


class CommandError(RuntimeError):
  """A command could not finish for a reason its message explains (not bad input): exit status 1."""


def script(prog: str, options: Sequence[Option], body: Callable, argv: Sequence[str]) -> None:
  """A thin absl main: defines `options`, parses `argv` (argv[0] = the program) with every flag mistake
  as one line (exit 2), then runs `body(argv_rest)` under `absl.app.run`."""
  from absl import app

  define(options, module_name=prog)
  rest = parse_flags(prog, argv)
  app.run(body, argv=list(argv), flags_parser=lambda _: rest)


def parse_flags(prog: str, argv) -> list:
  """absl's flag parsing, with every mistake (unknown flag, bad value, config field) as one line, exit 2."""
  from absl import app

  from me_fomm.commands import configs

  app.define_help_flags()
  try:
    return FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    print(f"{prog}: error: {configs.describe_flag_error(e, argv)}", file=sys.stderr)
    sys.exit(2)


class _OursOrWarnings(logging.Filter):
  """Passes our own lines (progress, our warnings) and every error; drops third-party INFO and WARNING
  lines (Orbax's handler registry, jax's "Unable to initialize backend 'tpu'" on a CPU machine, TFDS's
  notes on the folders it scans), which say nothing a user of the command acts on."""

  def __init__(self, roots: Sequence[str]):
    super().__init__()
    self.roots = tuple(roots)

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR:
      return True
    if record.name.split(".")[0] in ("me_fomm", "me_fomm_experiments", "me_fomm_datasets"):
      return True
    # absl's `logging.info(...)` logs as "absl": where it was called from says whose line it is.
    path = os.path.abspath(record.pathname or "")
    return path.startswith(self.roots)


def quiet_console() -> None:
  """The default console (`--verbosity=0`): our progress lines and warnings, and every error;
  `--verbosity=1` (or `-v 1`) shows the third-party INFO and WARNING lines too."""
  import me_fomm

  roots = [os.path.dirname(os.path.abspath(me_fomm.__file__)) + os.sep]
  for name in (
    "me_fomm_experiments",
    "me_fomm_datasets",
  ):  # found, not imported (that costs seconds)
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
      roots.append(os.path.dirname(os.path.abspath(spec.origin)) + os.sep)
  handlers = list(logging.getLogger().handlers)
  try:
    from absl import logging as absl_logging

    handlers.append(absl_logging.get_absl_handler())
  except ImportError:  # absl is a dependency; stay usable without it in notebooks
    pass
  for h in handlers:
    if not any(isinstance(f, _OursOrWarnings) for f in h.filters):
      h.addFilter(_OursOrWarnings(roots))


def run_command(name: str, module, argv) -> None:
  """Runs `module.run(read(module.OPTIONS))` then `module.show(result)`; anticipated bad input exits 2
  with one clear line, a stop the message explains (CommandError) exits 1."""
  if len(argv) > 1:
    print(
      f"me-fomm {name}: error: unexpected arguments {argv[1:]}; all options are --flags",
      file=sys.stderr,
    )
    sys.exit(2)
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  # absl routes Python logging through its own handler once app.run started; keep lines short.
  logging.getLogger("absl").setLevel(logging.WARNING)
  if FLAGS["verbosity"].value < 1:
    quiet_console()
  try:
    result = module.run(read(module.OPTIONS))
  except (ValueError, FileExistsError, FileNotFoundError) as e:
    # Every anticipated bad input raises one of these with a message saying what is wrong and what to do.
    print(f"me-fomm {name}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except CommandError as e:
    print(f"me-fomm {name}: stopped: {e}", file=sys.stderr)
    sys.exit(1)
  module.show(result)
