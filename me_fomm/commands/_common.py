"""Helpers shared by the generate / megc / evaluate / demo subcommands.

Flags are defined through `define`, which skips a name already defined by another command module: the
`me-fomm` dispatcher imports only one command per process, but tests (and `python -c`) may import several,
and absl refuses a second definition of the same flag name.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

from absl import flags

FLAGS = flags.FLAGS


def define(kind: str, name: str, default, help_text: str, **kwargs) -> None:
  """flags.DEFINE_<kind>(name, default, help_text) unless `name` exists already.

  The flag is registered as the calling command module's own (absl groups `--helpfull` by module and
  `FLAGS.module_help(module)` lists a command's flags), not as this helper module's.
  """
  if name in FLAGS:
    return
  caller = sys._getframe(1).f_globals.get("__name__", __name__)
  getattr(flags, f"DEFINE_{kind}")(name, default, help_text, module_name=caller, **kwargs)


class CommandError(RuntimeError):
  """A command could not finish for a reason its message explains (not bad input): exit status 1."""


def run_command(name: str, argv, body: Callable[[], int | None]) -> None:
  """Runs a command body with INFO logging; anticipated bad input exits 2 with one clear line."""
  if len(argv) > 1:
    print(
      f"me-fomm {name}: error: unexpected arguments {argv[1:]}; all options are --flags",
      file=sys.stderr,
    )
    sys.exit(2)
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  # absl routes Python logging through its own handler once app.run started; keep lines short.
  logging.getLogger("absl").setLevel(logging.WARNING)
  try:
    code = body()
  except (ValueError, FileExistsError, FileNotFoundError) as e:
    # Every anticipated bad input raises one of these with a message saying what is wrong and what to do.
    print(f"me-fomm {name}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except CommandError as e:
    print(f"me-fomm {name}: stopped: {e}", file=sys.stderr)
    sys.exit(1)
  if code:
    sys.exit(code)
