"""The `me-fomm` console script: one entry point, one subcommand per job.

Each subcommand lives in `me_fomm.commands.<name>` and defines its own absl flags and a
`main(argv)`. Only the chosen subcommand's module is imported, so `--help` lists the flags
that matter for that job and importing one job never pays for another's dependencies.
"""

import importlib
import sys

# name -> one-line summary, in the order a user meets them.
COMMANDS = {
  "demo": "build the synthetic corpus, train the demo config, generate, evaluate (no download)",
  "prepare": "convert a corpus (casme2, samm, smic, megc, synthetic_me, custom) to TFDS records",
  "train": "train a config (same as `python -m experiments.train`)",
  "generate": "drive a target face with a micro-expression clip; writes mp4 and GIF",
  "megc": "run the MEGC2021/2022 generation protocol",
  "evaluate": "score a checkpoint: reconstruction, cross-identity, ground truth; metrics.json + HTML",
  "convert": "convert an original PyTorch checkpoint (.pth.tar or .npz) to an Orbax checkpoint",
}


def _usage() -> str:
  lines = ["usage: me-fomm <command> [--flags]", "", "commands:"]
  width = max(len(n) for n in COMMANDS)
  lines += [f"  {n.ljust(width)}  {h}" for n, h in COMMANDS.items()]
  lines += ["", "`me-fomm <command> --help` lists a command's flags."]
  return "\n".join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name not in COMMANDS:
    print(f"me-fomm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
    sys.exit(2)
  module = importlib.import_module(f"me_fomm.commands.{name}")
  from absl import app

  prog = f"me-fomm {name}"
  _declare_key_flags(prog)
  # absl's --help describes the key flags of the module named by sys.argv[0], under the
  # docstring of __main__: make both those of the chosen command.
  sys.argv = [prog] + argv[2:]
  doc = (module.__doc__ or "").strip()
  sys.modules["__main__"].__doc__ = f"{doc}\n\nUSAGE: {prog} [flags]" if doc else None
  app.run(module.main, argv=sys.argv)


def _declare_key_flags(prog: str) -> None:
  """Makes the flags of the chosen command (and of the me_fomm modules it imports) show in --help."""
  from absl import flags

  fv = flags.FLAGS
  for module_name in list(fv.flags_by_module_dict()):
    if module_name.startswith(("me_fomm", "experiments", "benchmarks")):
      for flag in fv.get_key_flags_for_module(module_name):
        fv.register_key_flag_for_module(prog, flag)


if __name__ == "__main__":
  main()
