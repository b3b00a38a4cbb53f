"""The `me-fomm` console script: one entry point, one subcommand per job.

Each subcommand lives in `me_fomm.commands.<name>` (dashes as underscores: `fit-au` -> `fit_au`): its flags are one table (`OPTIONS`, see
`me_fomm.commands.options`), its job is `run(opts)` and `show(result)` prints what it did. Only the chosen
subcommand's module is imported and only its flags are defined, so `--help` lists the flags that matter
for that job and importing one job never pays for another's dependencies.
"""

import importlib
import sys

# name -> one-line summary, in the order a user meets them.
COMMANDS = {
  "demo": "build the synthetic corpus, train the demo config, generate, evaluate (no download)",
  "prepare": "convert a corpus (casme2, samm, smic, megc, synthetic_me, custom) to TFDS records",
  "train": "train a config (same as `python -m experiments.train`)",
  "generate": "drive a target face with a micro-expression clip or FACS action units; mp4 and GIF",
  "megc": "run the MEGC2021/2022 generation protocol",
  "evaluate": "score a checkpoint: reconstruction, cross-identity, ground truth; metrics.json + HTML",
  "convert": "convert an original PyTorch checkpoint (.pth.tar or .npz) to an Orbax checkpoint",
  "recognize": "STSTNet micro-expression recognition, MEGC2019 leave-one-subject-out: UF1 and UAR",
  "augment": "generate cross-identity clips of a corpus as a TFDS dataset (for recognize --augment)",
  "export": "export a checkpoint as StableHLO or ONNX (source pass + animation), checked against JAX",
  "fit-au": "fit the AU motion model (landmark patterns per action unit) on a FACS-coded corpus",
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
  run(name, argv[2:])


def run(name: str, args) -> None:
  """Defines command `name`'s flags, parses `args` and runs it (also `python -m experiments.train`)."""
  module = importlib.import_module(f"me_fomm.commands.{name.replace('-', '_')}")
  from me_fomm.commands import options

  prog = f"me-fomm {name}"
  # absl's --help describes the key flags of the module named by sys.argv[0], under the docstring of
  # __main__: make both those of the chosen command.
  sys.argv = [prog, *args]
  doc = (module.__doc__ or "").strip()
  sys.modules["__main__"].__doc__ = f"{doc}\n\nUSAGE: {prog} [flags]" if doc else None
  options.script(
    prog, module.OPTIONS, lambda argv: options.run_command(name, module, argv), sys.argv
  )


if __name__ == "__main__":
  main()
