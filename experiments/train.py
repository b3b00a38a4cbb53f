"""`python -m experiments.train --config=seed:casme2 --workdir=...`: the same program as `me-fomm train`."""

import sys

from me_fomm import cli

if __name__ == "__main__":
  cli.run("train", sys.argv[1:])
